import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Supplies the `Authorization` header of Pub/Sub requests.
///
/// Implementations cache their access token and refresh it before it expires; they are shared by
/// every client thread. No implementation ever puts a token, a key or an assertion into an error
/// message, a log line or its ``summary``.
package protocol AccessTokenProvider: Sendable {
    /// The header value (`Bearer …`), or nil to send requests unauthenticated (the emulator).
    /// Blocks while a token is fetched: call from a dedicated thread.
    func authorizationHeader() throws(PubSubError) -> String?
    /// Forgets a token that Pub/Sub refused (`UNAUTHENTICATED`), so the next call fetches a new one.
    func invalidate()
    /// The project the credentials belong to, if they name one (a key file's `project_id`, the
    /// metadata server's project). Blocking.
    func defaultProjectID() throws(PubSubError) -> String?
    /// How requests are authenticated, for logs and status: never a secret.
    var summary: String { get }
}

/// The OAuth 2.0 scope fashiond asks for.
package let pubSubScope = "https://www.googleapis.com/auth/pubsub"
