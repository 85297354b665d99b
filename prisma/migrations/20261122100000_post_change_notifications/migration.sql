-- Every instance keeps recently read posts in memory (src/plugins/app/post-cache.ts).
-- These triggers tell them, on commit, which posts changed: whatever makes the
-- change (the API, a script, an operator in psql, a cascading delete).
-- Payloads on channel "post_changes": "post:<id>", "author:<user id>" (the
-- author's name is part of a post), or "*" (forget everything).

CREATE FUNCTION "notify_post_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('post_changes', 'post:' || OLD."id");
    RETURN NULL;
END;
$$;

CREATE FUNCTION "notify_author_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('post_changes', 'author:' || OLD."id");
    RETURN NULL;
END;
$$;

CREATE FUNCTION "notify_posts_truncated"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('post_changes', '*');
    RETURN NULL;
END;
$$;

CREATE TRIGGER "posts_notify_changed"
    AFTER UPDATE OR DELETE ON "posts"
    FOR EACH ROW EXECUTE FUNCTION "notify_post_changed"();

CREATE TRIGGER "posts_notify_truncated"
    AFTER TRUNCATE ON "posts"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_posts_truncated"();

CREATE TRIGGER "users_notify_author_changed"
    AFTER UPDATE OF "full_name" OR DELETE ON "users"
    FOR EACH ROW EXECUTE FUNCTION "notify_author_changed"();

CREATE TRIGGER "users_notify_truncated"
    AFTER TRUNCATE ON "users"
    FOR EACH STATEMENT EXECUTE FUNCTION "notify_posts_truncated"();
