//! Permissions, the built-in roles that bundle them, and sets of them.
//!
//! A member's rights in an organization are the permissions of their role. API-key scopes
//! are a subset of these keys, and a key's rights are the intersection of its scopes and
//! its owner's permissions. One more scope, [`ADMIN_SCOPE`], is no organization permission:
//! it is how an instance admin's power reaches one of their keys, and nothing else does.

/// The API-key scope that carries its owner's instance-admin power (the `/admin/...`
/// routes, suspending any organization) to the key. Only an instance admin may grant it;
/// no default includes it. A key without it has no instance-admin power, whoever owns it,
/// and a key with it has that power only while its owner is an instance admin.
pub const ADMIN_SCOPE: &str = "admin";

use std::fmt;

/// One thing a member may do in an organization. The wire form is [`Permission::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    OrgRead,
    OrgWrite,
    OrgSuspend,
    MembersWrite,
    InvitesWrite,
    RolesWrite,
    TeamsWrite,
    AuditRead,
    ApiKeysRead,
    ApiKeysWrite,
    WebhooksRead,
    WebhooksWrite,
    TransfersRead,
    TransfersWrite,
    FilesRead,
    FilesWrite,
    FilesDelete,
    KvRead,
    KvWrite,
    KvDelete,
    SharesWrite,
    KeysWrite,
    MessagesRead,
    MessagesWrite,
    BillingRead,
    BillingManage,
    ConvertWrite,
}

impl Permission {
    /// Every permission, in the order `GET /v1/permissions` lists them.
    pub const ALL: [Permission; 27] = [
        Permission::OrgRead,
        Permission::OrgWrite,
        Permission::OrgSuspend,
        Permission::MembersWrite,
        Permission::InvitesWrite,
        Permission::RolesWrite,
        Permission::TeamsWrite,
        Permission::AuditRead,
        Permission::ApiKeysRead,
        Permission::ApiKeysWrite,
        Permission::WebhooksRead,
        Permission::WebhooksWrite,
        Permission::TransfersRead,
        Permission::TransfersWrite,
        Permission::FilesRead,
        Permission::FilesWrite,
        Permission::FilesDelete,
        Permission::KvRead,
        Permission::KvWrite,
        Permission::KvDelete,
        Permission::SharesWrite,
        Permission::KeysWrite,
        Permission::MessagesRead,
        Permission::MessagesWrite,
        Permission::BillingRead,
        Permission::BillingManage,
        Permission::ConvertWrite,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Permission::OrgRead => "org:read",
            Permission::OrgWrite => "org:write",
            Permission::OrgSuspend => "org:suspend",
            Permission::MembersWrite => "members:write",
            Permission::InvitesWrite => "invites:write",
            Permission::RolesWrite => "roles:write",
            Permission::TeamsWrite => "teams:write",
            Permission::AuditRead => "audit:read",
            Permission::ApiKeysRead => "api_keys:read",
            Permission::ApiKeysWrite => "api_keys:write",
            Permission::WebhooksRead => "webhooks:read",
            Permission::WebhooksWrite => "webhooks:write",
            Permission::TransfersRead => "transfers:read",
            Permission::TransfersWrite => "transfers:write",
            Permission::FilesRead => "files:read",
            Permission::FilesWrite => "files:write",
            Permission::FilesDelete => "files:delete",
            Permission::KvRead => "kv:read",
            Permission::KvWrite => "kv:write",
            Permission::KvDelete => "kv:delete",
            Permission::SharesWrite => "shares:write",
            Permission::KeysWrite => "keys:write",
            Permission::MessagesRead => "messages:read",
            Permission::MessagesWrite => "messages:write",
            Permission::BillingRead => "billing:read",
            Permission::BillingManage => "billing:manage",
            Permission::ConvertWrite => "convert:write",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Permission::OrgRead => {
                "See the organization, its members, roles, teams and departments"
            }
            Permission::OrgWrite => "Rename the organization and change its settings",
            Permission::OrgSuspend => "Suspend and unsuspend the organization",
            Permission::MembersWrite => "Change members' roles and status, and remove members",
            Permission::InvitesWrite => "Invite people into the organization",
            Permission::RolesWrite => "Create, change and delete custom roles",
            Permission::TeamsWrite => "Create, change and delete teams and departments",
            Permission::AuditRead => "Read the organization's audit log",
            Permission::ApiKeysRead => "List API keys",
            Permission::ApiKeysWrite => "Create, change, rotate and revoke API keys",
            Permission::WebhooksRead => "List webhooks and their deliveries",
            Permission::WebhooksWrite => "Create, change, test and delete webhooks",
            Permission::TransfersRead => "List and read transfers",
            Permission::TransfersWrite => "Create and revoke transfers",
            Permission::FilesRead => "List and download files",
            Permission::FilesWrite => "Upload files",
            Permission::FilesDelete => "Delete files",
            Permission::KvRead => "Read secrets from the vault",
            Permission::KvWrite => "Write secrets to the vault",
            Permission::KvDelete => "Delete secrets from the vault",
            Permission::SharesWrite => "Share files and secrets with members",
            Permission::KeysWrite => "Generate and rekey one's own key pair",
            Permission::MessagesRead => "Read messages",
            Permission::MessagesWrite => "Send, edit and delete messages",
            Permission::BillingRead => "See the organization's plan, usage and invoices",
            Permission::BillingManage => "Change the organization's plan through checkout",
            Permission::ConvertWrite => "Convert files (single and bulk) and cancel conversions",
        }
    }

    pub fn parse(key: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.key() == key)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn all() -> PermissionSet {
        Permission::ALL.into_iter().collect()
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// Whether every permission of `self` is also in `other`.
    pub fn is_subset_of(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// This set with `permission` added.
    pub fn union(self, permission: Permission) -> PermissionSet {
        PermissionSet(self.0 | permission.bit())
    }

    /// The permissions in both sets.
    pub fn intersection(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    pub fn keys(self) -> Vec<String> {
        self.iter().map(|p| p.key().to_owned()).collect()
    }

    /// Parses permission keys; the first unknown key is the error.
    pub fn from_keys<S: AsRef<str>>(keys: &[S]) -> Result<PermissionSet, String> {
        keys.iter()
            .map(|k| Permission::parse(k.as_ref()).ok_or_else(|| k.as_ref().to_owned()))
            .collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        PermissionSet(iter.into_iter().fold(0, |bits, p| bits | p.bit()))
    }
}

/// The roles every organization has. Custom roles are stored per organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinRole {
    Owner,
    Admin,
    Member,
    Auditor,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 4] = [
        BuiltinRole::Owner,
        BuiltinRole::Admin,
        BuiltinRole::Member,
        BuiltinRole::Auditor,
    ];

    /// The id of the role on the wire and in `memberships.role`.
    pub fn key(self) -> &'static str {
        match self {
            BuiltinRole::Owner => "owner",
            BuiltinRole::Admin => "admin",
            BuiltinRole::Member => "member",
            BuiltinRole::Auditor => "auditor",
        }
    }

    pub fn parse(key: &str) -> Option<BuiltinRole> {
        BuiltinRole::ALL.into_iter().find(|r| r.key() == key)
    }

    pub fn description(self) -> &'static str {
        match self {
            BuiltinRole::Owner => "Everything, including suspending the organization",
            BuiltinRole::Admin => "Everything except suspending the organization and its billing",
            BuiltinRole::Member => "Transfers, files, secrets, shares and own API keys",
            BuiltinRole::Auditor => "Read-only: the organization, its audit log and listings",
        }
    }

    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        match self {
            BuiltinRole::Owner => PermissionSet::all(),
            // Billing is the owners' (and a billing role's, a custom role holding the
            // billing permissions): money is not an administrator's call.
            BuiltinRole::Admin => PermissionSet::all()
                .iter()
                .filter(|p| !matches!(*p, OrgSuspend | BillingRead | BillingManage))
                .collect(),
            BuiltinRole::Member => [
                OrgRead,
                ApiKeysRead,
                ApiKeysWrite,
                TransfersRead,
                TransfersWrite,
                FilesRead,
                FilesWrite,
                FilesDelete,
                KvRead,
                KvWrite,
                KvDelete,
                SharesWrite,
                KeysWrite,
                MessagesRead,
                MessagesWrite,
                ConvertWrite,
            ]
            .into_iter()
            .collect(),
            BuiltinRole::Auditor => [
                OrgRead,
                AuditRead,
                ApiKeysRead,
                WebhooksRead,
                TransfersRead,
                FilesRead,
                KvRead,
                MessagesRead,
            ]
            .into_iter()
            .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_unique() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.key()), Some(p));
        }
        let keys: std::collections::BTreeSet<_> = Permission::ALL.map(|p| p.key()).into();
        assert_eq!(keys.len(), Permission::ALL.len());
        assert_eq!(Permission::parse("org:delete"), None);
    }

    #[test]
    fn built_in_roles_form_a_ladder_below_owner() {
        let owner = BuiltinRole::Owner.permissions();
        let admin = BuiltinRole::Admin.permissions();
        assert!(admin.is_subset_of(owner) && !owner.is_subset_of(admin));
        assert!(BuiltinRole::Member.permissions().is_subset_of(admin));
        assert!(BuiltinRole::Auditor.permissions().is_subset_of(admin));
        assert!(
            !BuiltinRole::Auditor
                .permissions()
                .contains(Permission::KvWrite)
        );
        assert!(
            !BuiltinRole::Member
                .permissions()
                .contains(Permission::AuditRead)
        );
        assert!(
            owner.contains(Permission::BillingRead) && owner.contains(Permission::BillingManage)
        );
        assert!(!admin.contains(Permission::BillingRead));
    }

    #[test]
    fn from_keys_names_the_unknown_key() {
        assert_eq!(
            PermissionSet::from_keys(&["org:read", "nope"]),
            Err("nope".to_owned())
        );
        let set = PermissionSet::from_keys(&["kv:read", "org:read"]).unwrap();
        assert_eq!(set.keys(), vec!["org:read", "kv:read"]);
    }
}
