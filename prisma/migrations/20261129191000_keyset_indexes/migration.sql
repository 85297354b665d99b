-- Every list's page is a range of one index (src/repositories/cursor.ts):
-- (created_at, id) for a whole list, (column, created_at, id) for the list
-- of one author, account or kind, read backwards for newest first. The
-- account an administrative action was done to gets a column and index of
-- its own (it was only inside `details`), and clients an index too.

-- DropIndex
DROP INDEX "audit_events_kind_created_at_idx";

-- DropIndex
DROP INDEX "audit_events_user_id_created_at_idx";

-- DropIndex
DROP INDEX "posts_author_id_created_at_id_idx";

-- AlterTable
ALTER TABLE "audit_events" ADD COLUMN     "target_user_id" UUID;

-- The target of administrative actions recorded so far, from their details.
UPDATE "audit_events" SET "target_user_id" = ("details"->>'target_user_id')::uuid
WHERE "details"->>'target_user_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

-- CreateIndex
CREATE INDEX "audit_events_user_id_created_at_id_idx" ON "audit_events"("user_id", "created_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_target_user_id_created_at_id_idx" ON "audit_events"("target_user_id", "created_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_kind_created_at_id_idx" ON "audit_events"("kind", "created_at", "id");

-- CreateIndex
CREATE INDEX "clients_created_at_id_idx" ON "clients"("created_at", "id");

-- CreateIndex
CREATE INDEX "posts_author_id_created_at_id_idx" ON "posts"("author_id", "created_at", "id");
