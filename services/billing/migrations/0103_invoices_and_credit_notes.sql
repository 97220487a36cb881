-- Invoices, one per completed referral of a billed offer, numbered F-<issuer>-<year>-<sequence:06> from
-- number_sequence (document 'invoice'). One line per delivery.
CREATE TABLE invoice (
    id               uuid        PRIMARY KEY,
    number           text        NOT NULL UNIQUE,
    issuer_code      text        NOT NULL,
    year             integer     NOT NULL,
    sequence         bigint      NOT NULL CHECK (sequence >= 1),
    member_id        uuid        NOT NULL,
    buyer_siren      text        NOT NULL,
    request_id       uuid        NOT NULL,
    referral_id      uuid        NOT NULL UNIQUE,
    offer_id         uuid        NOT NULL,
    offer_version    integer     NOT NULL,
    label            text        NOT NULL,
    quantity         bigint      NOT NULL CHECK (quantity >= 1),
    unit_price_cents bigint      NOT NULL CHECK (unit_price_cents >= 0),
    net_cents        bigint      NOT NULL CHECK (net_cents > 0),
    vat_rate_bp      integer     CHECK (vat_rate_bp BETWEEN 0 AND 10000),
    vat_note         text        NOT NULL,
    vat_cents        bigint      NOT NULL CHECK (vat_cents >= 0),
    gross_cents      bigint      NOT NULL CHECK (gross_cents = net_cents + vat_cents),
    currency         char(3)     NOT NULL,
    status           text        NOT NULL CHECK (status IN ('issued', 'sent', 'paid', 'cancelled')),
    issued_at        timestamptz NOT NULL,
    due_date         date        NOT NULL,
    credit_note_id   uuid,
    UNIQUE (issuer_code, year, sequence)
);
CREATE INDEX invoice_by_member ON invoice (member_id, issued_at, id);
CREATE INDEX invoice_by_request ON invoice (request_id, issued_at, id);
CREATE INDEX invoice_by_issuer ON invoice (issuer_code, issued_at, id);
CREATE INDEX invoice_by_issued_at ON invoice (issued_at, id);

-- Credit notes, each cancelling one whole invoice, numbered A-<issuer>-<year>-<sequence:06> (document
-- 'credit_note'). Amounts are positive: the document type says it is a credit.
CREATE TABLE credit_note (
    id               uuid        PRIMARY KEY,
    number           text        NOT NULL UNIQUE,
    issuer_code      text        NOT NULL,
    year             integer     NOT NULL,
    sequence         bigint      NOT NULL CHECK (sequence >= 1),
    invoice_id       uuid        NOT NULL UNIQUE REFERENCES invoice (id),
    reason           text        NOT NULL,
    issued_at        timestamptz NOT NULL,
    UNIQUE (issuer_code, year, sequence)
);
