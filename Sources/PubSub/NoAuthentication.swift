/// The emulator: no authentication at all.
package struct NoAuthentication: AccessTokenProvider {
    package init() {}
    package func authorizationHeader() throws(PubSubError) -> String? { nil }
    package func invalidate() {}
    package func defaultProjectID() throws(PubSubError) -> String? { nil }
    package var summary: String { "none (emulator)" }
}
