-- The offer's price kind (issue 7, "on quote"): an accept of an offer priced on quote must state its amount,
-- an accept of any other offer must not. Empty for offers read before this column existed: the catalogue's next
-- publication of the same version fills it (see store::upsert_offer), and until then replies pass as they are.
ALTER TABLE offer ADD COLUMN price_kind text NOT NULL DEFAULT '';
