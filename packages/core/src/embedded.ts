/** Where an embedded install (PGlite, no DATABASE_URL) keeps its files, shared by the server, the db and the CLI. */
export const DEFAULT_DATA_DIR = "./.proxyscale/";

/** The HS256 secret an embedded server creates in its data directory on first start. */
export const JWT_SECRET_FILE_NAME = "jwt-secret";
