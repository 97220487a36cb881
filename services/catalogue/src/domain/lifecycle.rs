//! An offer's life: draft → published → archived, and the versions an operator's edit makes (a published
//! offer gets its next version, a draft is edited in place).

use id77_proto::vocabulary::Category;
use uuid::Uuid;

use super::offer::OfferContent;
use crate::error::CatalogueError;

/// Where an offer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfferStatus {
    Draft,
    Published,
    Archived,
}

impl OfferStatus {
    pub const ALL: [OfferStatus; 3] = [Self::Draft, Self::Published, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// An offer as stored, for change detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffer {
    pub id: Uuid,
    pub version: i32,
    pub status: OfferStatus,
    /// Edited through the operator API: the seed leaves it alone.
    pub operator_managed: bool,
    pub content: OfferContent,
}

/// What an operator's edit does to an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// A draft is edited in place (its version stays).
    InPlace,
    /// A published offer gets its next version, published at once.
    NewVersion { version: i32 },
    /// Same content: nothing to write.
    Unchanged,
}

/// Why an operator's action is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleError {
    /// The offer is archived (or, for publish, already published).
    InvalidTransition { from: OfferStatus, action: &'static str },
    /// `expected_version` did not match.
    VersionConflict { current: i32, expected: i32 },
    /// The code cannot change; the category of an exhibition neither (its copies and bookings).
    Immutable(&'static str),
}

impl From<LifecycleError> for CatalogueError {
    fn from(error: LifecycleError) -> Self {
        match error {
            LifecycleError::InvalidTransition { from, action } => {
                CatalogueError::InvalidTransition { from: from.as_str(), action }
            }
            LifecycleError::VersionConflict { current, expected } => {
                CatalogueError::VersionConflict { current, expected }
            }
            LifecycleError::Immutable(what) => CatalogueError::Immutable(what),
        }
    }
}

/// Decides an edit of `current` into `next`.
pub fn edit(current: &StoredOffer, next: &OfferContent, expected_version: i32) -> Result<Edit, LifecycleError> {
    if expected_version != 0 && expected_version != current.version {
        return Err(LifecycleError::VersionConflict { current: current.version, expected: expected_version });
    }
    if next.code != current.content.code {
        return Err(LifecycleError::Immutable("code"));
    }
    if (next.category == Category::ExhibitionLoan) != (current.content.category == Category::ExhibitionLoan) {
        return Err(LifecycleError::Immutable("category"));
    }
    if next.copies < current.content.copies && current.status != OfferStatus::Draft {
        return Err(LifecycleError::Immutable("copies (they can be added, not removed, once published)"));
    }
    match current.status {
        OfferStatus::Archived => Err(LifecycleError::InvalidTransition { from: current.status, action: "edit" }),
        _ if *next == current.content => Ok(Edit::Unchanged),
        OfferStatus::Draft => Ok(Edit::InPlace),
        OfferStatus::Published => Ok(Edit::NewVersion { version: current.version.saturating_add(1) }),
    }
}

/// Publishing: only a draft.
pub fn publish(current: OfferStatus) -> Result<OfferStatus, LifecycleError> {
    match current {
        OfferStatus::Draft => Ok(OfferStatus::Published),
        from => Err(LifecycleError::InvalidTransition { from, action: "publish" }),
    }
}

/// Archiving: a draft or a published offer.
pub fn archive(current: OfferStatus) -> Result<OfferStatus, LifecycleError> {
    match current {
        OfferStatus::Draft | OfferStatus::Published => Ok(OfferStatus::Archived),
        from => Err(LifecycleError::InvalidTransition { from, action: "archive" }),
    }
}
