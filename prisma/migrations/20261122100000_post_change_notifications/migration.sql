-- Every instance keeps recently read posts in memory (src/plugins/app/post-cache.ts).
-- These triggers tell them, on commit, which posts changed: whatever makes the
-- change (the API, a script, an operator in psql, a cascading delete).
-- Payloads on channel "post_changes": "post:<id>", "author:<user id>" (the
-- author's name is part of a post), or "*" (forget everything). A row
-- trigger's argument names what its table's ids are.

CREATE FUNCTION "notify_post_changes"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('post_changes', '*');
    ELSE
        PERFORM pg_notify('post_changes', TG_ARGV[0] || ':' || OLD."id");
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER "posts_notify_changed"
    AFTER UPDATE OR DELETE ON "posts"
    FOR EACH ROW EXECUTE FUNCTION "notify_post_changes"('post');

CREATE TRIGGER "posts_notify_truncated"
    AFTER TRUNCATE ON "posts"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_post_changes"();

CREATE TRIGGER "users_notify_author_changed"
    AFTER UPDATE OF "full_name" OR DELETE ON "users"
    FOR EACH ROW EXECUTE FUNCTION "notify_post_changes"('author');

CREATE TRIGGER "users_notify_truncated"
    AFTER TRUNCATE ON "users"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_post_changes"();
