import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Who is on the other end of a control connection, as the kernel saw it at `connect()`.
struct ControlPeer: Sendable, Equatable {
    /// SO_PEERCRED: process, user and primary group.
    var credentials: PeerCredentials
    /// SO_PEERGROUPS: the process's supplementary groups; nil if the kernel could not say (more
    /// groups than we asked for), in which case the user database is consulted instead.
    var supplementaryGroups: [UInt32]?
}
