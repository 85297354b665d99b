-- The account security version (users.security_version, copied into each
-- session when it begins), refresh tokens bound to the client they were issued
-- to, and the generations from which refresh tokens are derived.

-- AlterTable
ALTER TABLE "refresh_tokens" ADD COLUMN     "generation" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "client_id" VARCHAR(100) NOT NULL DEFAULT 'public',
ADD COLUMN     "refresh_generation" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "refresh_salt" UUID NOT NULL DEFAULT gen_random_uuid(),
ADD COLUMN     "security_version" INTEGER NOT NULL DEFAULT 1;

-- Sessions that exist already belong to accounts at version 1 (the default
-- above); new sessions always say which version they saw.
ALTER TABLE "sessions" ALTER COLUMN "security_version" DROP DEFAULT;

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "security_version" INTEGER NOT NULL DEFAULT 1;

-- CreateIndex
CREATE INDEX "sessions_client_id_idx" ON "sessions"("client_id");
