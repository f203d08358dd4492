import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Who may use the control socket: root, the daemon's own user, and members of the socket's group
/// (`socket_group`, default `fashiond`). Everyone else is refused every endpoint, reads included:
/// results carry request ids and timings that are not for every local user.
///
/// The socket's mode (0660) already keeps others from connecting; this check is the second lock
/// for sockets whose mode or owner the daemon does not control (socket activation, a mode
/// loosened by hand). Group membership is judged from the peer process's own credentials
/// (SO_PEERGROUPS), like the kernel's check on the socket file, not from `/etc/group`; so a user
/// who was just added to the group must log in again, for both checks alike.
struct ControlAccessPolicy: Sendable {
    /// The daemon's effective user id.
    let daemonUserID: UInt32
    /// The group whose members are let in; nil when `socket_group` names no existing group.
    let groupID: UInt32?
    /// How the group is called in messages.
    let groupName: String

    init(daemonUserID: UInt32, groupID: UInt32?, groupName: String) {
        self.daemonUserID = daemonUserID
        self.groupID = groupID
        self.groupName = groupName
    }

    /// The policy for `socketGroup` (empty: the daemon's own group), looked up once at start-up.
    static func resolve(socketGroup: String) -> ControlAccessPolicy {
        if socketGroup.isEmpty {
            let gid = getegid()
            let name = getgrgid(gid).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? String(gid)
            return ControlAccessPolicy(daemonUserID: geteuid(), groupID: gid, groupName: name)
        }
        let gid = getgrnam(socketGroup).map { $0.pointee.gr_gid }
        return ControlAccessPolicy(daemonUserID: geteuid(), groupID: gid, groupName: socketGroup)
    }

    /// Whether `peer` may use the API. A connection whose credentials could not be read is refused.
    func permits(_ peer: ControlPeer?) -> Bool {
        guard let peer else { return false }
        let uid = peer.credentials.uid
        if uid == 0 || uid == daemonUserID { return true }
        guard let groupID else { return false }
        if peer.credentials.gid == groupID { return true }
        if let groups = peer.supplementaryGroups, groupID != 0 { return groups.contains(groupID) }
        return Self.user(uid: uid, isMemberOf: groupID)
    }

    /// The 403 answer for a refused peer: who was refused and how to get in.
    func refusal(for peer: ControlPeer?) -> RouteError {
        guard let peer else {
            return RouteError(
                403, "forbidden", "fashiond could not read the peer credentials of this connection, so it refuses it")
        }
        let uid = peer.credentials.uid
        let user = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
        let who = user.map { "user \($0) (uid \(uid))" } ?? "uid \(uid)"
        guard groupID != nil else {
            return RouteError(
                403, "forbidden",
                "\(who) may not use fashiond's control socket: only root and the daemon's user may, because socket_group '\(groupName)' does not exist; create the group and add the user to it, or run as root"
            )
        }
        let hint = user.map { "usermod -aG \(groupName) \($0)" } ?? "usermod -aG \(groupName) <user>"
        return RouteError(
            403, "forbidden",
            "\(who) may not use fashiond's control socket: only root, the daemon's user and members of group \(groupName) may; add the user to the group (\(hint)) and log in again"
        )
    }

    /// Membership according to the user database, for peers whose groups the kernel did not report.
    static func user(uid: UInt32, isMemberOf gid: gid_t) -> Bool {
        guard let passwd = getpwuid(uid), let name = passwd.pointee.pw_name else { return false }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, passwd.pointee.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            if getgrouplist(name, passwd.pointee.pw_gid, &groups, &count) < 0 { return false }
        }
        return groups.prefix(Int(max(0, count))).contains(gid)
    }

    // MARK: socket options

    /// SO_PEERCRED and SO_PEERGROUPS from <asm-generic/socket.h> (x86_64 and aarch64).
    static let peerCredentialsOption: Int32 = 17
    static let peerGroupsOption: Int32 = 59

    /// How many supplementary groups SO_PEERGROUPS is asked for; a peer with more gets the
    /// user-database check.
    typealias PeerGroupBuffer = InlineArray<256, UInt32>

    /// The groups in a zero-padded SO_PEERGROUPS answer. The kernel keeps a process's groups
    /// sorted, so trailing zeros are padding; only a leading 0 can be a real group, and an answer
    /// of all zeros is read as "no groups" (which only matters for a socket group of gid 0, and
    /// ``permits(_:)`` asks the user database for that one).
    static func groups(fromPaddedList list: PeerGroupBuffer) -> [UInt32] {
        var last = -1
        for index in list.indices where list[index] != 0 { last = index }
        guard last >= 0 else { return [] }
        return (0...last).map { list[$0] }
    }
}
