// Compile-time checks that the generated types are precise, not `any`: each `@ts-expect-error` below must be an
// error under `tsc --strict`, or the build fails ("Unused '@ts-expect-error' directive").

import type { Client } from "openapi-fetch";

import type { components, paths } from "../generated/api.js";

type Quote = components["schemas"]["Quote"];

export function typing(api: Client<paths>, quote: Quote): unknown[] {
  return [
    // @ts-expect-error a quote's amount is `amount_cents`: there is no `amount`
    quote.amount,
    // @ts-expect-error a quote's status is one of the document's values
    ((status: Quote["status"]) => status)("draft"),
    // @ts-expect-error `amount_cents` is an integer, not a string
    ((amount: Quote["amount_cents"]) => amount)("2450,00"),
    // @ts-expect-error the document has no such path
    api.GET("/v1/quote"),
    // @ts-expect-error a login needs a password
    api.POST("/v1/auth/token", { body: { email: "dgs@meaux.fr" } }),
    // @ts-expect-error getRequest needs its path parameter
    api.GET("/v1/requests/{id}", { params: { path: {} } }),
  ];
}
