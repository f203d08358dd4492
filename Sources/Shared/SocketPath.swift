/// Where the control socket lives when nobody says otherwise.
///
/// Rules, in order: `FASHIOND_SOCKET`; `$RUNTIME_DIRECTORY/control.sock` (systemd's
/// `RuntimeDirectory=`); `/run/fashiond/control.sock` for root; `$XDG_RUNTIME_DIR/fashiond/control.sock`;
/// `/tmp/fashiond-<uid>/control.sock` as a last resort. Both programs use the same rules, so they
/// meet without configuration.
package enum SocketPath {
    /// Environment variable that overrides the socket path for both `fashiond` and `fashionctl`.
    package static let environmentVariable = "FASHIOND_SOCKET"

    /// Resolves the default socket path from an environment and the effective user id.
    package static func resolve(environment: [String: String], effectiveUserID: UInt32) -> String {
        if let explicit = environment[environmentVariable], !explicit.isEmpty { return explicit }
        if let runtime = environment["RUNTIME_DIRECTORY"], !runtime.isEmpty {
            // systemd may pass several colon-separated directories; the first is ours.
            let first = runtime.split(separator: ":").first.map(String.init) ?? runtime
            return first + "/control.sock"
        }
        if effectiveUserID == 0 { return "/run/fashiond/control.sock" }
        if let xdg = environment["XDG_RUNTIME_DIR"], !xdg.isEmpty { return xdg + "/fashiond/control.sock" }
        return "/tmp/fashiond-\(effectiveUserID)/control.sock"
    }
}
