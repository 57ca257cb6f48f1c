//! Reading SAML protocol messages from SPs (AuthnRequest, LogoutRequest, LogoutResponse) out of
//! the safe XML tree, with the checks every message gets: version, ID, issue instant within the
//! allowed clock skew, destination.

use chrono::{Duration, NaiveDateTime};
use kuntalaistili_metadata::saml::metadata::parse_time;
use kuntalaistili_metadata::saml::xml::{Element, NS_SAML, NS_SAMLP};

/// How far an `IssueInstant` may be from our clock.
pub const CLOCK_SKEW_SECONDS: i64 = 180;

/// How long a message ID is remembered (longer than the skew window on both sides).
pub const REPLAY_WINDOW_MINUTES: i64 = 10;

/// Why a message was refused (the code goes to the audit log; the text to the error page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub detail: String,
}

impl Refused {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Refused {
        Refused {
            code,
            detail: detail.into(),
        }
    }
}

/// Fields every request and response carries.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub id: String,
    pub issuer: String,
    pub destination: Option<String>,
    pub issue_instant: Option<NaiveDateTime>,
}

fn common(root: &Element, now: NaiveDateTime) -> Result<Common, Refused> {
    if root.attr("Version") != Some("2.0") {
        return Err(Refused::new("version", "Version must be 2.0"));
    }
    let id = root
        .attr("ID")
        .filter(|i| {
            !i.is_empty()
                && i.len() <= 256
                && i.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && !i.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        })
        .ok_or_else(|| Refused::new("id", "the message has no valid ID"))?
        .to_owned();
    let issuer = root
        .single(NS_SAML, "Issuer")
        .map_err(|_| Refused::new("issuer", "more than one Issuer"))?
        .map(|i| i.trimmed().to_owned())
        .filter(|i| !i.is_empty() && i.len() <= 1024)
        .ok_or_else(|| Refused::new("issuer", "the message names no Issuer"))?;
    let issue_instant = root
        .attr("IssueInstant")
        .and_then(parse_time)
        .ok_or_else(|| Refused::new("issue_instant", "the message has no valid IssueInstant"))?;
    if (now - issue_instant).num_seconds().abs() > CLOCK_SKEW_SECONDS {
        return Err(Refused::new(
            "issue_instant",
            format!(
                "IssueInstant {} is more than {CLOCK_SKEW_SECONDS} s from the IdP's clock",
                issue_instant.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ));
    }
    Ok(Common {
        id,
        issuer,
        destination: root.attr("Destination").map(str::to_owned),
        issue_instant: Some(issue_instant),
    })
}

/// The `Destination` must be the endpoint that received the message; a signed message must
/// name it.
pub fn check_destination(c: &Common, expected: &str, signed: bool) -> Result<(), Refused> {
    match &c.destination {
        Some(d) if d == expected => Ok(()),
        Some(d) => Err(Refused::new(
            "destination",
            format!("Destination {d:?} is not this endpoint ({expected})"),
        )),
        None if signed => Err(Refused::new(
            "destination",
            "a signed message must name its Destination",
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuthnRequest {
    pub common: Common,
    pub force_authn: bool,
    pub is_passive: bool,
    pub acs_url: Option<String>,
    pub acs_index: Option<u32>,
    pub protocol_binding: Option<String>,
    pub name_id_format: Option<String>,
    /// `RequestedAuthnContext`: comparison and class references.
    pub authn_context: Option<(String, Vec<String>)>,
}

fn flag(el: &Element, name: &str) -> bool {
    matches!(el.attr(name), Some("true") | Some("1"))
}

pub fn authn_request(root: &Element, now: NaiveDateTime) -> Result<AuthnRequest, Refused> {
    if !root.is(NS_SAMLP, "AuthnRequest") {
        return Err(Refused::new(
            "message",
            "the message is not an AuthnRequest",
        ));
    }
    let common = common(root, now)?;
    let name_id_format = root
        .single(NS_SAMLP, "NameIDPolicy")
        .map_err(|_| Refused::new("message", "more than one NameIDPolicy"))?
        .and_then(|p| p.attr("Format"))
        .map(str::to_owned);
    let authn_context = root
        .single(NS_SAMLP, "RequestedAuthnContext")
        .map_err(|_| Refused::new("message", "more than one RequestedAuthnContext"))?
        .map(|r| {
            (
                r.attr("Comparison").unwrap_or("exact").to_owned(),
                r.children_named(NS_SAML, "AuthnContextClassRef")
                    .map(|c| c.trimmed().to_owned())
                    .collect(),
            )
        });
    let acs_index =
        match root.attr("AssertionConsumerServiceIndex") {
            Some(i) => Some(i.trim().parse::<u32>().map_err(|_| {
                Refused::new("acs", "AssertionConsumerServiceIndex is not a number")
            })?),
            None => None,
        };
    let acs_url = root.attr("AssertionConsumerServiceURL").map(str::to_owned);
    if acs_url.is_some() && acs_index.is_some() {
        return Err(Refused::new(
            "acs",
            "AssertionConsumerServiceURL and AssertionConsumerServiceIndex are mutually exclusive",
        ));
    }
    Ok(AuthnRequest {
        common,
        force_authn: flag(root, "ForceAuthn"),
        is_passive: flag(root, "IsPassive"),
        acs_url,
        acs_index,
        protocol_binding: root.attr("ProtocolBinding").map(str::to_owned),
        name_id_format,
        authn_context,
    })
}

#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    pub common: Common,
    pub not_on_or_after: Option<NaiveDateTime>,
    pub name_id: String,
    pub session_indexes: Vec<String>,
}

pub fn logout_request(root: &Element, now: NaiveDateTime) -> Result<LogoutRequest, Refused> {
    if !root.is(NS_SAMLP, "LogoutRequest") {
        return Err(Refused::new(
            "message",
            "the message is not a LogoutRequest",
        ));
    }
    let common = common(root, now)?;
    let not_on_or_after = root.attr("NotOnOrAfter").and_then(parse_time);
    if not_on_or_after.is_some_and(|t| t + Duration::seconds(CLOCK_SKEW_SECONDS) <= now) {
        return Err(Refused::new(
            "expired",
            "the LogoutRequest has expired (NotOnOrAfter)",
        ));
    }
    let name_id = root
        .single(NS_SAML, "NameID")
        .map_err(|_| Refused::new("message", "more than one NameID"))?
        .map(|n| n.trimmed().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Refused::new(
                "name_id",
                "the LogoutRequest has no NameID (encrypted identifiers are not supported)",
            )
        })?;
    Ok(LogoutRequest {
        common,
        not_on_or_after,
        name_id,
        session_indexes: root
            .children_named(NS_SAMLP, "SessionIndex")
            .map(|s| s.trimmed().to_owned())
            .collect(),
    })
}

#[derive(Debug, Clone, Default)]
pub struct LogoutResponse {
    pub common: Common,
    pub in_response_to: Option<String>,
    /// The top-level status code.
    pub status: String,
}

pub fn logout_response(root: &Element, now: NaiveDateTime) -> Result<LogoutResponse, Refused> {
    if !root.is(NS_SAMLP, "LogoutResponse") {
        return Err(Refused::new(
            "message",
            "the message is not a LogoutResponse",
        ));
    }
    let common = common(root, now)?;
    let status = root
        .child(NS_SAMLP, "Status")
        .and_then(|s| s.child(NS_SAMLP, "StatusCode"))
        .and_then(|c| c.attr("Value"))
        .unwrap_or_default()
        .to_owned();
    Ok(LogoutResponse {
        common,
        in_response_to: root.attr("InResponseTo").map(str::to_owned),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuntalaistili_metadata::saml::xml::{parse, MESSAGE};

    fn at(s: &str) -> NaiveDateTime {
        parse_time(s).unwrap()
    }

    #[test]
    fn reads_an_authn_request() {
        let x = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" IssueInstant="2026-11-26T10:00:00Z" Destination="https://idp/saml/sso" ForceAuthn="true" AssertionConsumerServiceIndex="2"><saml:Issuer> https://sp </saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient"/><samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>"#;
        let r = authn_request(&parse(x, MESSAGE).unwrap(), at("2026-11-26T10:01:00Z")).unwrap();
        assert_eq!(r.common.issuer, "https://sp");
        assert!(r.force_authn && !r.is_passive);
        assert_eq!(r.acs_index, Some(2));
        assert_eq!(r.authn_context.unwrap().0, "minimum");
        // Too old, and too far in the future.
        for now in ["2026-11-26T11:00:00Z", "2026-11-26T09:00:00Z"] {
            let e = authn_request(&parse(x, MESSAGE).unwrap(), at(now)).unwrap_err();
            assert_eq!(e.code, "issue_instant");
        }
        let two_issuers = x.replace(
            "<saml:Issuer> https://sp </saml:Issuer>",
            "<saml:Issuer>https://sp</saml:Issuer><saml:Issuer>https://other</saml:Issuer>",
        );
        assert_eq!(
            authn_request(
                &parse(&two_issuers, MESSAGE).unwrap(),
                at("2026-11-26T10:00:00Z")
            )
            .unwrap_err()
            .code,
            "issuer"
        );
    }
}
