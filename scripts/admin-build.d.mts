export function adminBuildIsStale(adminDir: string, coreSrc?: string): boolean;
export function ensureAdminBuild(pnpm: string, root: string): void;
