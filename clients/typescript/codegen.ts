// GraphQL Code Generator: typed documents for the storefront's operations
// (../operations) against the printed schema (../schema.graphql), and the
// persisted-documents manifest (src/gql/persisted-documents.json: sha256 of each
// document's text -> text) that PERSISTED_DOCUMENTS_MANIFEST reads.
// Run with `npm run codegen` (or `make clients` from the repository root).
import { createHash } from "node:crypto";
import type { CodegenConfig } from "@graphql-codegen/cli";

// The hex sha256 of the document's text, as Apollo's persisted queries send it
// (extensions.persistedQuery.sha256Hash) and the server checks it.
const sha256 = (document: string): string => createHash("sha256").update(document).digest("hex");

const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["../operations/*.graphql"],
  ignoreNoDocuments: false,
  emitLegacyCommonJSImports: false,
  generates: {
    "./src/gql/": {
      preset: "client",
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: {
          mode: "embedHashInDocument",
          hashPropertyName: "hash",
          hashAlgorithm: sha256,
        },
      },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { Time: "string" },
      },
    },
  },
};

export default config;
