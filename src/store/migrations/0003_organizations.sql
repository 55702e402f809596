-- What organizations are made of beyond their members: a slug and settings, custom roles,
-- teams and departments, and invites.

ALTER TABLE organizations ADD COLUMN slug TEXT;
ALTER TABLE organizations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
UPDATE organizations SET slug = 'org-' || substr(replace(id, '-', ''), 1, 12) WHERE slug IS NULL;
CREATE UNIQUE INDEX organizations_by_slug ON organizations (slug);

-- Custom roles; the built-in ones (owner, admin, member, auditor) live in code.
-- memberships.role holds a built-in role's name or a custom role's id.
CREATE TABLE roles (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- Lower-cased name: unique per organization, case-insensitively.
    name_key     TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    -- JSON array of permission keys.
    permissions  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (org_id, name_key)
) STRICT;

-- Teams and departments: named groups of members, one table told apart by `kind`.
CREATE TABLE member_groups (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('team', 'department')),
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (org_id, kind, name_key)
) STRICT;

CREATE TABLE member_group_members (
    group_id  TEXT NOT NULL REFERENCES member_groups (id) ON DELETE CASCADE,
    org_id    TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id),
    -- Only members of the group's organization can be in it; leaving the organization
    -- leaves its groups.
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX member_group_members_by_user ON member_group_members (org_id, user_id);

CREATE TABLE invites (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL,
    role              TEXT NOT NULL,
    -- SHA-256 of the single-use token; the token itself is never stored.
    token_hash        BLOB NOT NULL UNIQUE,
    invited_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    accepted_at       TEXT,
    accepted_user_id  TEXT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at        TEXT
) STRICT;
CREATE INDEX invites_by_org ON invites (org_id, created_at);
