//! Scopes that open the register or act for the municipality (administration, provisioning,
//! messaging, audit ingest, rights checks, notices). A client being allowed such a scope is not
//! enough when a person logs in through it: the person must hold the role the scope needs — when
//! the code is issued, at every refresh and at every API call — and the scopes meant for services
//! themselves are never granted to a person's login at all.

use kuntalaistili_schema::users::User;

/// What a privileged scope asks of the person a token was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The person must hold this role (and the account must be active).
    Role(&'static str),
    /// Only a client acting for itself (client credentials) may hold it.
    ClientOnly,
}

/// Every privileged scope and what it needs.
pub const PRIVILEGED: [(&str, Needs); 7] = [
    ("admin", Needs::Role("admin")),
    ("scim", Needs::Role("admin")),
    ("messages:send", Needs::ClientOnly),
    ("audit:write", Needs::ClientOnly),
    ("residents:read", Needs::ClientOnly),
    ("authz:check", Needs::ClientOnly),
    ("notices:write", Needs::ClientOnly),
];

/// What `scope` needs, when it is privileged.
pub fn needs(scope: &str) -> Option<Needs> {
    PRIVILEGED
        .iter()
        .find(|(s, _)| *s == scope)
        .map(|(_, n)| *n)
}

/// Whether `user` may hold `scope` in a token issued for their login.
pub fn person_may_hold(scope: &str, user: &User) -> bool {
    role_may_hold(scope, &user.role, !user.disabled)
}

/// Whether a person of `role` (an active account or not) may hold `scope`.
pub fn role_may_hold(scope: &str, role: &str, active: bool) -> bool {
    match needs(scope) {
        None => true,
        Some(Needs::ClientOnly) => false,
        Some(Needs::Role(needed)) => active && role == needed,
    }
}

/// The first of `scopes` that `user` may not hold, if any.
pub fn first_refused<'a, I>(scopes: I, user: &User) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    first_refused_for_role(scopes, &user.role, !user.disabled)
}

fn first_refused_for_role<'a, I>(scopes: I, role: &str, active: bool) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    scopes.into_iter().find(|s| !role_may_hold(s, role, active))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residents_hold_no_privileged_scope() {
        for (s, _) in PRIVILEGED {
            assert!(!role_may_hold(s, "resident", true), "{s}");
            assert!(!role_may_hold(s, "staff", true), "{s}");
        }
        assert!(role_may_hold("openid", "resident", true));
        assert!(role_may_hold("reservations", "resident", true));
        assert_eq!(
            first_refused_for_role(["openid", "profile", "admin", "scim"], "resident", true),
            Some("admin")
        );
    }

    #[test]
    fn administrators_hold_admin_and_scim_but_never_service_scopes() {
        assert!(role_may_hold("admin", "admin", true));
        assert!(role_may_hold("scim", "admin", true));
        assert!(!role_may_hold("messages:send", "admin", true));
        assert!(!role_may_hold("audit:write", "admin", true));
        assert_eq!(
            first_refused_for_role(["openid", "admin", "scim"], "admin", true),
            None
        );
        assert!(!role_may_hold("scim", "admin", false));
    }
}
