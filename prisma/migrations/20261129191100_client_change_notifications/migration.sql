-- Every instance keeps service clients' credentials in memory
-- (src/plugins/app/client-cache.ts). These triggers tell them, on commit,
-- which client changed: a new or revoked secret, a deleted client, whoever
-- makes the change (the API, a script, an operator in psql, a cascade).
-- Payloads on channel "client_changes": the client's id, or "*" (forget
-- everything). A row trigger's argument names the column holding the id.

CREATE FUNCTION "notify_client_changes"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('client_changes', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('client_changes', to_jsonb(OLD) ->> TG_ARGV[0]);
    ELSE
        PERFORM pg_notify('client_changes', to_jsonb(NEW) ->> TG_ARGV[0]);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER "clients_notify_changed"
    AFTER INSERT OR UPDATE OR DELETE ON "clients"
    FOR EACH ROW EXECUTE FUNCTION "notify_client_changes"('id');

CREATE TRIGGER "clients_notify_truncated"
    AFTER TRUNCATE ON "clients"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_client_changes"();

CREATE TRIGGER "client_secrets_notify_changed"
    AFTER INSERT OR UPDATE OR DELETE ON "client_secrets"
    FOR EACH ROW EXECUTE FUNCTION "notify_client_changes"('client_id');

CREATE TRIGGER "client_secrets_notify_truncated"
    AFTER TRUNCATE ON "client_secrets"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_client_changes"();
