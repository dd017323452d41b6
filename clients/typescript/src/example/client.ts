// A minimal typed client over the generated documents: HTTP with persisted
// queries (the hash first, the whole document only when the server asks for it),
// and live updates over graphql-ws. Apollo Client, urql or Apollo Kotlin/iOS do
// the same with their own links (docs/clients.md).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import manifest from "../gql/persisted-documents.json" with { type: "json" };

/** One GraphQL error as the server answers it: clients branch on extensions.code. */
export interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

/** A request the server refused or that failed: its error codes, never a stack. */
export class GraphQLRequestError extends Error {
  constructor(
    readonly operation: string,
    readonly errors: GraphQLErrorShape[],
  ) {
    super(`${operation}: ${errors.map((e) => e.extensions?.code ?? e.message).join(", ")}`);
  }
}

const documents: Record<string, string> = manifest;

/** The sha256 the client preset embedded in a generated document. */
export function documentHash(doc: TypedDocumentNode<unknown, never> | object): string {
  const hash = (doc as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!hash || !(hash in documents)) {
    throw new Error("not a persisted document of this kit: run npm run codegen");
  }
  return hash;
}

function operationName(doc: object): string {
  const defs = (doc as { definitions?: { kind: string; name?: { value: string } }[] }).definitions ?? [];
  return defs.find((d) => d.kind === "OperationDefinition")?.name?.value ?? "operation";
}

/** Scoville over HTTP and WebSocket as one signed-in (or anonymous) caller. */
export class Scoville {
  constructor(
    readonly url: string,
    readonly token?: string,
  ) {}

  /**
   * Runs a query or mutation by its hash (Apollo's persisted-query protocol); when
   * the server does not know the hash (PERSISTED_QUERY_NOT_FOUND: persisted-
   * documents mode off and not yet registered) it sends the document once with
   * it. Throws GraphQLRequestError on any top-level error.
   */
  async execute<R, V>(doc: TypedDocumentNode<R, V>, variables: V): Promise<R> {
    const hash = documentHash(doc);
    const extensions = { persistedQuery: { version: 1, sha256Hash: hash } };
    let answer = await this.post({ operationName: operationName(doc), variables, extensions });
    if (answer.errors?.some((e) => e.extensions?.code === "PERSISTED_QUERY_NOT_FOUND")) {
      answer = await this.post({ operationName: operationName(doc), query: documents[hash], variables, extensions });
    }
    if (answer.errors?.length || !answer.data) {
      throw new GraphQLRequestError(operationName(doc), answer.errors ?? []);
    }
    return answer.data as R;
  }

  private async post(body: object): Promise<{ data?: unknown; errors?: GraphQLErrorShape[] }> {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json, application/json",
    };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const res = await fetch(this.url, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    try {
      return JSON.parse(text) as { data?: unknown; errors?: GraphQLErrorShape[] };
    } catch {
      throw new Error(`HTTP ${res.status} without a GraphQL answer`);
    }
  }

  /** A graphql-ws client; the token goes in connection_init, never in the URL. */
  live(): Client {
    return createClient({
      url: this.url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      connectionParams: this.token ? { Authorization: `Bearer ${this.token}` } : {},
      retryAttempts: 0,
      lazy: true,
    });
  }

  /**
   * Follows a subscription operation: the manifest's document with its hash (one
   * message per operation, so nothing is saved by leaving the text out); calls onNext with each push until the returned function is called, and
   * onError once if the server refuses it or the socket fails.
   */
  follow<R, V>(client: Client, doc: TypedDocumentNode<R, V>, variables: V, onNext: (data: R) => void, onError: (err: unknown) => void): () => void {
    const hash = documentHash(doc);
    return client.subscribe<R>(
      {
        operationName: operationName(doc),
        query: documents[hash] ?? "",
        variables: variables as Record<string, unknown>,
        extensions: { persistedQuery: { version: 1, sha256Hash: hash } },
      },
      {
        next: (msg) => {
          if (msg.errors?.length) {
            onError(new GraphQLRequestError(operationName(doc), msg.errors as GraphQLErrorShape[]));
            return;
          }
          if (msg.data) onNext(msg.data as R);
        },
        error: onError,
        complete: () => {},
      },
    );
  }
}
