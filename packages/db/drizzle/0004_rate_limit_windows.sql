CREATE TABLE "rate_limit_windows" (
	"user_id" text NOT NULL,
	"window_start" timestamp (3) with time zone NOT NULL,
	"requests" integer NOT NULL,
	CONSTRAINT "rate_limit_windows_pk" PRIMARY KEY("user_id","window_start"),
	CONSTRAINT "rate_limit_windows_requests_non_negative" CHECK ("rate_limit_windows"."requests" >= 0)
);
--> statement-breakpoint
CREATE INDEX "rate_limit_windows_window_idx" ON "rate_limit_windows" USING btree ("window_start");