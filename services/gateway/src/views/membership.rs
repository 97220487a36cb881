//! Collectivités of the directory and members, as JSON.

use id77_proto::membership::v1 as membership;
use id77_proto::vocabulary::MemberKind;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{UNSPECIFIED, non_empty, timestamp};

// A collectivité's kind as the document names it (the views carry `&'static str`).
/// A collectivité's kind: a commune, an EPCI (intercommunalité) or a syndicat.
#[derive(ToSchema)]
#[schema(as = CollectivityKind, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum CollectivityKindDoc {
    Commune,
    Epci,
    Syndicat,
}

/// Where a membership stands: `pending` until the coordinator approves it (`active`) or refuses it (`refused`).
#[derive(ToSchema)]
#[schema(as = MemberStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum MemberStatusDoc {
    Pending,
    Active,
    Suspended,
    Withdrawn,
    Refused,
}

/// A collectivité's kind (membership's `CollectivityKind`), in the platform's words (`commune`, `epci`...).
pub fn collectivity_kind(kind: i32) -> &'static str {
    MemberKind::from_collectivity(kind).map_or(UNSPECIFIED, MemberKind::as_str)
}

pub fn parse_collectivity_kind(value: &str) -> Option<membership::CollectivityKind> {
    MemberKind::parse(value).map(MemberKind::to_collectivity)
}

pub fn member_status(status: i32) -> &'static str {
    match membership::MemberStatus::try_from(status) {
        Ok(membership::MemberStatus::Pending) => "pending",
        Ok(membership::MemberStatus::Active) => "active",
        Ok(membership::MemberStatus::Suspended) => "suspended",
        Ok(membership::MemberStatus::Withdrawn) => "withdrawn",
        Ok(membership::MemberStatus::Refused) => "refused",
        _ => UNSPECIFIED,
    }
}

pub fn parse_member_status(value: &str) -> Option<membership::MemberStatus> {
    match value {
        "pending" => Some(membership::MemberStatus::Pending),
        "active" => Some(membership::MemberStatus::Active),
        "suspended" => Some(membership::MemberStatus::Suspended),
        "withdrawn" => Some(membership::MemberStatus::Withdrawn),
        "refused" => Some(membership::MemberStatus::Refused),
        _ => None,
    }
}

/// A collectivité of the directory (communes, EPCI and syndicats of Seine-et-Marne).
#[derive(Debug, Serialize, ToSchema)]
pub struct Collectivity {
    /// 9 digits, Luhn check digit.
    #[schema(pattern = "^[0-9]{9}$", example = "217700145")]
    pub siren: String,
    pub name: String,
    #[schema(value_type = CollectivityKindDoc)]
    pub kind: &'static str,
    /// Communes only.
    #[schema(required = true)]
    pub insee_code: Option<String>,
    #[schema(example = "77")]
    pub departement: String,
    pub population: i64,
    pub postal_codes: Vec<String>,
    /// For a commune: its EPCI, if in the directory.
    #[schema(required = true)]
    pub epci_siren: Option<String>,
    /// For an EPCI: its legal form (CC, CA, CU, METRO...).
    #[schema(required = true)]
    pub legal_form: Option<String>,
}

impl From<membership::Collectivity> for Collectivity {
    fn from(c: membership::Collectivity) -> Self {
        Self {
            kind: collectivity_kind(c.kind),
            siren: c.siren,
            name: c.name,
            insee_code: non_empty(c.insee_code),
            departement: c.departement,
            population: c.population,
            postal_codes: c.postal_codes,
            epci_siren: non_empty(c.epci_siren),
            legal_form: non_empty(c.legal_form),
        }
    }
}

/// A collectivité that applied to join ID 77 (a membership).
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(pattern = "^[0-9]{9}$", example = "217700145")]
    pub siren: String,
    pub name: String,
    #[schema(value_type = CollectivityKindDoc)]
    pub kind: &'static str,
    #[schema(value_type = MemberStatusDoc)]
    pub status: &'static str,
    pub contact_name: String,
    #[schema(format = Email)]
    pub contact_email: String,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub applied_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub approved_at: Option<String>,
    /// The Département agent (a `referent` user) who follows this member; null until the coordinator assigns one.
    #[schema(required = true, format = "uuid")]
    pub referent_user_id: Option<String>,
    /// Why the coordinator refused the application; null unless `refused`.
    #[schema(required = true)]
    pub refusal_reason: Option<String>,
    /// RFC 3339, UTC; null unless `refused`.
    #[schema(required = true, format = DateTime)]
    pub refused_at: Option<String>,
}

impl From<membership::Member> for Member {
    fn from(m: membership::Member) -> Self {
        Self {
            kind: collectivity_kind(m.kind),
            status: member_status(m.status),
            applied_at: timestamp(m.applied_at.as_ref()),
            approved_at: timestamp(m.approved_at.as_ref()),
            referent_user_id: non_empty(m.referent_user_id),
            refusal_reason: non_empty(m.refusal_reason),
            refused_at: timestamp(m.refused_at.as_ref()),
            id: m.id,
            siren: m.siren,
            name: m.name,
            contact_name: m.contact_name,
            contact_email: m.contact_email,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use id77_proto::prost_types::Timestamp;
    use serde_json::json;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn kinds_and_statuses_are_lowercase_strings_both_ways() {
        for kind in ["commune", "epci", "syndicat"] {
            let parsed = parse_collectivity_kind(kind).map(|k| collectivity_kind(k.into()));
            assert_eq!(parsed, Some(kind));
        }
        for status in ["pending", "active", "suspended", "withdrawn", "refused"] {
            assert_eq!(parse_member_status(status).map(|s| member_status(s.into())), Some(status));
        }
        assert_eq!(parse_collectivity_kind("COMMUNE"), None);
        assert_eq!(parse_member_status("unspecified"), None);
        // Unknown values from a newer service do not break the gateway.
        assert_eq!(member_status(0), UNSPECIFIED);
    }

    #[test]
    fn member_json_has_the_documented_shape() {
        let member = Member::from(membership::Member {
            id: "m1".into(),
            siren: "217700145".into(),
            name: "Avon".into(),
            kind: membership::CollectivityKind::Commune.into(),
            status: membership::MemberStatus::Pending.into(),
            contact_name: "A. Maire".into(),
            contact_email: "mairie@example.fr".into(),
            applied_at: ts(1_700_000_000, 0),
            approved_at: None,
            referent_user_id: String::new(),
            refusal_reason: String::new(),
            refused_at: None,
        });
        assert_eq!(
            serde_json::to_value(member).unwrap_or_default(),
            json!({
                "id": "m1", "siren": "217700145", "name": "Avon", "kind": "commune", "status": "pending",
                "contact_name": "A. Maire", "contact_email": "mairie@example.fr",
                "applied_at": "2023-11-14T22:13:20Z", "approved_at": null, "referent_user_id": null,
                "refusal_reason": null, "refused_at": null
            })
        );
        let followed = Member::from(membership::Member { referent_user_id: "u1".into(), ..Default::default() });
        assert_eq!(serde_json::to_value(followed).unwrap_or_default()["referent_user_id"], "u1");
        let refused = Member::from(membership::Member {
            status: membership::MemberStatus::Refused.into(),
            refusal_reason: "Hors du département".into(),
            refused_at: ts(1_700_000_000, 0),
            ..Default::default()
        });
        let refused = serde_json::to_value(refused).unwrap_or_default();
        assert_eq!(
            (&refused["status"], &refused["refusal_reason"], &refused["refused_at"]),
            (&json!("refused"), &json!("Hors du département"), &json!("2023-11-14T22:13:20Z"))
        );
    }
}
