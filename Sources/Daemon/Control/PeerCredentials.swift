import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `struct ucred` of SO_PEERCRED, which Swift's Glibc module does not export (it needs
/// _GNU_SOURCE); same layout: pid_t, uid_t, gid_t.
struct PeerCredentials: Sendable, Equatable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}
