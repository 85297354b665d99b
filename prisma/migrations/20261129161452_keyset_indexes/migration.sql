-- Keyset pagination reads a range of an index in (created_at, id) order for
-- every list: the audit trail's filters get indexes that end in id too, the
-- account an administrative action was done to gets a column and an index of
-- its own (it was only inside `details`), and clients get one as well.

-- DropIndex
DROP INDEX "audit_events_kind_created_at_idx";

-- DropIndex
DROP INDEX "audit_events_user_id_created_at_idx";

-- AlterTable
ALTER TABLE "audit_events" ADD COLUMN     "target_user_id" UUID;

-- The target of administrative actions recorded so far, from their details.
UPDATE "audit_events" SET "target_user_id" = ("details"->>'target_user_id')::uuid
WHERE "details"->>'target_user_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

-- CreateIndex
CREATE INDEX "audit_events_user_id_created_at_id_idx" ON "audit_events"("user_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "audit_events_target_user_id_created_at_id_idx" ON "audit_events"("target_user_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "audit_events_kind_created_at_id_idx" ON "audit_events"("kind", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "clients_created_at_id_idx" ON "clients"("created_at", "id");
