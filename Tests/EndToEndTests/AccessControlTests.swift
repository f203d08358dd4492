import Foundation
import Shared
import TestSupport
import Testing

/// Test users and a test group, created for one test and removed after it (needs root).
private final class TemporaryAccounts {
    let group: String
    let member: String
    let outsider: String
    private(set) var created: [(kind: String, name: String)] = []

    init() throws {
        let tag = String(UUID().uuidString.prefix(6)).lowercased()
        group = "fdtg\(tag)"
        member = "fdtm\(tag)"
        outsider = "fdto\(tag)"
        try command("/usr/sbin/groupadd", [group])
        created.append(("group", group))
        // -N: primary group `users`, so the test group is only a supplementary group of the member.
        try command("/usr/sbin/useradd", ["-M", "-N", "-s", "/usr/sbin/nologin", "-G", group, member])
        created.append(("user", member))
        try command("/usr/sbin/useradd", ["-M", "-N", "-s", "/usr/sbin/nologin", outsider])
        created.append(("user", outsider))
    }

    var groupID: UInt32? { getgrnam(group).map { $0.pointee.gr_gid } }

    private func command(_ executable: String, _ arguments: [String]) throws {
        let result = try run(executable, arguments, timeout: 30)
        guard result.status == 0 else {
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }

    deinit {
        for (kind, name) in created.reversed() {
            _ = try? run(kind == "user" ? "/usr/sbin/userdel" : "/usr/sbin/groupdel", [name], timeout: 30)
        }
    }
}

@Suite(
    "Access to the control socket", .tags(.root), .serialized,
    .enabled(if: geteuid() == 0, "creates users and groups; needs root"))
struct AccessControlTests {
    /// Runs fashionctl as `user` with the groups /etc/group gives it, like a fresh login.
    func ctl(as user: String, _ fashionctl: String, _ arguments: [String], stdin: Data? = nil) throws -> CommandResult {
        try run(
            "/usr/bin/setpriv", ["--reuid=\(user)", "--regid=users", "--init-groups", "--", fashionctl] + arguments,
            stdin: stdin, timeout: 60)
    }

    @Test("socket 0660 in the fashiond group: members may submit and read, others are refused with a clear error")
    func groupMembersOnly() throws {
        let accounts = try TemporaryAccounts()
        let gid = try #require(accounts.groupID)
        let directory = try TemporaryDirectory()
        // A copy any user can run, whatever the permissions of the build directory.
        let fashionctl = directory.path("fashionctl")
        try FileManager.default.copyItem(atPath: Paths.binary("fashionctl"), toPath: fashionctl)
        chmod(fashionctl, 0o755)
        let daemon = DaemonProcess(directory: directory, arguments: ["--set", "socket_group=\(accounts.group)"])
        try daemon.start()
        let socket = ["--socket", daemon.socket]

        var info = stat()
        #expect(stat(daemon.socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660, "socket mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(info.st_gid == gid, "socket group \(info.st_gid), expected \(gid)")

        let image = try Data(contentsOf: URL(fileURLWithPath: try TestSetImages.load().files[0]))

        // A member: status, submit (reading the image from stdin), results.
        let memberStatus = try ctl(as: accounts.member, fashionctl, socket + ["status", "--json"])
        #expect(memberStatus.status == 0, "member status: \(memberStatus.stderr)")
        let memberSubmit = try ctl(
            as: accounts.member, fashionctl, socket + ["submit", "--wait", "--json", "-"], stdin: image)
        #expect(memberSubmit.status == 0, "member submit: \(memberSubmit.stderr)")
        #expect(try parseRecords(memberSubmit.stdout).first?.status == .ok)
        let memberResults = try ctl(as: accounts.member, fashionctl, socket + ["results", "--json", "-n", "5"])
        #expect(memberResults.status == 0, "member results: \(memberResults.stderr)")
        #expect(try parseRecords(memberResults.stdout).count == 1)

        // Anyone else cannot even connect (the kernel checks the socket's mode): exit status 3.
        for arguments in [["status"], ["results", "-n", "1"], ["submit", "-"]] {
            let refused = try ctl(as: accounts.outsider, fashionctl, socket + arguments, stdin: image)
            #expect(refused.status == 3, "outsider \(arguments[0]): status \(refused.status)")
            #expect(refused.stderr.lowercased().contains("permission"), "outsider \(arguments[0]): \(refused.stderr)")
        }

        // With the socket's mode loosened (by hand, or a socket unit with another SocketMode), the
        // daemon's own check still refuses every endpoint, reads included, naming the group.
        #expect(chmod(daemon.socket, 0o666) == 0)
        for arguments in [["status"], ["results", "-n", "1"], ["models"], ["submit", "-"], ["reload"]] {
            let refused = try ctl(as: accounts.outsider, fashionctl, socket + arguments, stdin: image)
            #expect(
                refused.status == 1,
                "outsider \(arguments[0]) on a 0666 socket: status \(refused.status) \(refused.stderr)")
            #expect(
                refused.stderr.contains(accounts.group) && refused.stderr.contains(accounts.outsider),
                "outsider \(arguments[0]): \(refused.stderr)")
        }
        #expect(try ctl(as: accounts.member, fashionctl, socket + ["status"]).status == 0)
        #expect(try daemon.ctl(["status"]).status == 0, "root must always get in")
        #expect(daemon.log().contains("control request refused"))
        #expect(daemon.stop() == 0)
    }

    @Test("without an existing socket group only root and the daemon's user get in")
    func missingGroupFailsClosed() throws {
        let accounts = try TemporaryAccounts()
        let directory = try TemporaryDirectory()
        let fashionctl = directory.path("fashionctl")
        try FileManager.default.copyItem(atPath: Paths.binary("fashionctl"), toPath: fashionctl)
        chmod(fashionctl, 0o755)
        let daemon = DaemonProcess(
            directory: directory, arguments: ["--set", "socket_group=fdt-no-such-group", "--set", "socket_mode=0666"])
        try daemon.start()
        let refused = try ctl(as: accounts.member, fashionctl, ["--socket", daemon.socket, "status"])
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains("fdt-no-such-group") && refused.stderr.contains("does not exist"),
            "\(refused.stderr)")
        #expect(try daemon.ctl(["status"]).status == 0)
        #expect(daemon.stop() == 0)
    }
}
