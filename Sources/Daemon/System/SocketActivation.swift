import CSystemd
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sockets handed over by systemd socket activation (`sd_listen_fds`).
package enum SocketActivation {
    /// The first passed listening Unix stream socket, or nil when not socket-activated.
    package static func listeningSocket() -> Int32? {
        let count = sd_listen_fds(1)
        guard count > 0 else { return nil }
        for offset in 0..<count {
            let fd = SD_LISTEN_FDS_START + offset
            if sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 { return fd }
        }
        return nil
    }
}
