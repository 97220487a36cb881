//! Protobuf <-> domain for collectivités and members: the words of the wire (kinds, statuses, ids) and the
//! messages built from stored rows.

use id77_platform::{ServiceError, time};
use id77_proto::membership::v1 as pb;
use id77_proto::vocabulary::MemberKind;
use uuid::Uuid;

use crate::domain::MemberStatus;
use crate::store::{CollectivityRow, MemberRow};

/// The protobuf kind of a stored kind (`Unspecified` for a word the vocabulary does not know).
pub fn kind_to_proto(kind: &str) -> pb::CollectivityKind {
    MemberKind::parse(kind).map_or(pb::CollectivityKind::Unspecified, MemberKind::to_collectivity)
}

/// A kind filter: `None` for unspecified, an error for a value the contract does not know.
pub fn kind_from_proto(kind: i32) -> Result<Option<MemberKind>, ServiceError> {
    match pb::CollectivityKind::try_from(kind) {
        Ok(_) => Ok(MemberKind::from_collectivity(kind)),
        Err(_) => Err(ServiceError::invalid("kind", "is not a known kind")),
    }
}

pub fn status_to_proto(status: &str) -> pb::MemberStatus {
    match MemberStatus::parse(status) {
        Some(MemberStatus::Pending) => pb::MemberStatus::Pending,
        Some(MemberStatus::Active) => pb::MemberStatus::Active,
        Some(MemberStatus::Suspended) => pb::MemberStatus::Suspended,
        Some(MemberStatus::Withdrawn) => pb::MemberStatus::Withdrawn,
        Some(MemberStatus::Refused) => pb::MemberStatus::Refused,
        None => pb::MemberStatus::Unspecified,
    }
}

/// A status filter: `None` for unspecified, an error for a value the contract does not know.
pub fn status_from_proto(status: i32) -> Result<Option<MemberStatus>, ServiceError> {
    match pb::MemberStatus::try_from(status) {
        Ok(pb::MemberStatus::Unspecified) => Ok(None),
        Ok(pb::MemberStatus::Pending) => Ok(Some(MemberStatus::Pending)),
        Ok(pb::MemberStatus::Active) => Ok(Some(MemberStatus::Active)),
        Ok(pb::MemberStatus::Suspended) => Ok(Some(MemberStatus::Suspended)),
        Ok(pb::MemberStatus::Withdrawn) => Ok(Some(MemberStatus::Withdrawn)),
        Ok(pb::MemberStatus::Refused) => Ok(Some(MemberStatus::Refused)),
        Err(_) => Err(ServiceError::invalid("status", "is not a known status")),
    }
}

pub fn collectivity_to_proto(c: CollectivityRow) -> pb::Collectivity {
    pb::Collectivity {
        kind: kind_to_proto(&c.kind).into(),
        siren: c.siren,
        name: c.name,
        insee_code: c.insee_code.unwrap_or_default(),
        departement: c.departement,
        population: c.population,
        postal_codes: c.postal_codes,
        epci_siren: c.epci_siren.unwrap_or_default(),
        legal_form: c.legal_form.unwrap_or_default(),
    }
}

pub fn member_to_proto(m: MemberRow) -> pb::Member {
    pb::Member {
        id: m.id.to_string(),
        kind: kind_to_proto(&m.kind).into(),
        status: status_to_proto(&m.status).into(),
        siren: m.siren,
        name: m.name,
        contact_name: m.contact_name,
        contact_email: m.contact_email,
        applied_at: Some(time::to_proto(m.applied_at)),
        approved_at: time::to_proto_opt(m.approved_at),
        referent_user_id: m.referent_user_id.map(|r| r.to_string()).unwrap_or_default(),
        refusal_reason: m.refusal_reason.unwrap_or_default(),
        refused_at: time::to_proto_opt(m.refused_at),
    }
}

/// A required id field.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

/// A trimmed field, `None` when empty.
pub fn optional(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|s| !s.is_empty())
}

/// An optional id field (empty: none).
pub fn optional_id(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    optional(raw).map(|id| parse_id(field, id)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_map_both_ways() {
        for kind in MemberKind::ALL {
            let proto = kind_to_proto(kind.as_str());
            assert_eq!(kind_from_proto(proto.into()).ok(), Some(Some(*kind)));
        }
        assert_eq!(kind_to_proto("syndicat"), pb::CollectivityKind::Syndicat);
        assert_eq!(kind_to_proto("région"), pb::CollectivityKind::Unspecified);
        assert_eq!(kind_from_proto(0).ok(), Some(None));
        assert!(kind_from_proto(99).is_err());
        for status in ["pending", "active", "suspended", "withdrawn", "refused"] {
            let proto = status_to_proto(status);
            assert_eq!(status_from_proto(proto.into()).ok().flatten().map(MemberStatus::as_str), Some(status));
        }
        assert_eq!(status_from_proto(0).ok(), Some(None));
        assert!(status_from_proto(99).is_err());
    }
}
