import Foundation
import Shared
import TestSupport
import Testing

/// fashiond as operators run it: the Debian package installed on a machine whose PID 1 is a real
/// systemd (booted in systemd-nspawn on a throwaway overlay, see scripts/systemd-sandbox.sh), driven
/// only through systemctl, journalctl, the control socket and the package manager.
///
/// One sandbox serves the whole scenario, in the order an operator meets it: install, start, use,
/// socket activation, reload, a stalled pipeline, stop, security review, removal and purge.
@Suite("fashiond under systemd", .tags(.systemd, .slow), .serialized)
struct SystemdServiceTests {
    static let socket = "/run/fashiond/control.sock"
    static let stallFile = "/var/lib/fashiond/debug-stall"
    static let modelFile = "/usr/share/fashiond/models/fashion-cnn/model.onnx"

    @Test("package install, start, socket activation, journal, reload, watchdog, stop, purge")
    func operatorScenario() throws {
        let binaries = RepositoryPaths.binaries
        for binary in ["fashiond", "fashionctl"] {
            try #require(
                FileManager.default.isExecutableFile(atPath: binaries.appendingPathComponent(binary).path),
                "\(binary) is not built in \(binaries.path); run `swift build` first (or set FASHIOND_BIN_DIR)")
        }
        let sandbox = try step("boot") { try SystemdSandbox.boot() }
        defer { step("tear down") { sandbox.shutdown() } }

        try step("install") { try installPackage(in: sandbox, binaries: binaries) }
        try step("start") { try startReturnsAfterReady(in: sandbox) }
        let requestID = try step("submit") { try submitThroughSocket(in: sandbox) }
        try step("journal") { try predictionIsInJournal(in: sandbox, requestID: requestID) }
        try step("socket activation") { try socketActivationStartsTheDaemon(in: sandbox) }
        try step("reload") { try reloadSwapsModelsAndRefusesBrokenOnes(in: sandbox) }
        try step("watchdog") { try stalledPipelineIsRestartedByWatchdog(in: sandbox) }
        try step("stop") { try stopLeavesNoFailedUnit(in: sandbox) }
        try step("security") { try exposureIsAtMostTwo(in: sandbox) }
        try step("remove and purge") { try removeKeepsStateAndPurgeDeletesIt(in: sandbox) }
    }

    /// Runs one step of the scenario and prints how long it took (information, not an assertion).
    func step<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let started = ContinuousClock.now
        defer { print("systemd scenario: \(name) took \(ContinuousClock.now - started)") }
        return try body()
    }

    // MARK: steps

    /// `dpkg -i` creates the user and group, enables and starts the socket, installs the conffile.
    func installPackage(in sandbox: SystemdSandbox, binaries: URL) throws {
        let deb: String
        if let prebuilt = ProcessInfo.processInfo.environment["FASHIOND_TEST_DEB"] {
            deb = prebuilt
        } else {
            // Inside the state directory, which the sandbox's holder removes even if this process dies.
            let output = sandbox.stateDirectory + "/deb"
            defer { try? FileManager.default.removeItem(atPath: output) }
            let build = try runCommand(
                "/bin/bash",
                [
                    RepositoryPaths.debBuilder, "--bin-dir", binaries.path, "--out-dir", output,
                    "--compression", "none",
                ], timeout: 300)
            try #require(build.status == 0, "building the .deb failed: \(build)")
            let path = try #require(build.stdout.split(separator: "\n").last.map(String.init))
            try sandbox.copyIn(path, to: "/var/tmp/fashiond.deb")
            deb = "/var/tmp/fashiond.deb"
        }
        if deb != "/var/tmp/fashiond.deb" { try sandbox.copyIn(deb, to: "/var/tmp/fashiond.deb") }

        // This host's policy-rc.d forbids starting services (a container image's default); a real
        // machine has none. The man-db trigger only costs time.
        try sandbox.exec(["rm", "-f", "/usr/sbin/policy-rc.d", "/var/lib/man-db/auto-update"])
        let install = try sandbox.exec(["dpkg", "-i", "/var/tmp/fashiond.deb"], timeout: 300)
        try #require(install.status == 0, "dpkg -i failed: \(install)")

        let verify = try sandbox.exec(["systemd-analyze", "verify", "fashiond.service", "fashiond.socket"])
        #expect(
            verify.status == 0 && verify.stderr.isEmpty, "systemd-analyze verify complains about the units: \(verify)")
        #expect(
            try sandbox.exec(["getent", "group", "fashiond"]).status == 0, "postinst did not create group fashiond")
        #expect(
            try sandbox.exec(["getent", "passwd", "fashiond"]).status == 0, "postinst did not create user fashiond")
        #expect(try sandbox.exec(["systemctl", "is-enabled", "fashiond.socket"]).stdout.hasPrefix("enabled"))
        #expect(
            try sandbox.exec(["systemctl", "is-active", "fashiond.socket"]).stdout.hasPrefix("active"),
            "postinst did not start fashiond.socket")
        let socketMode = try sandbox.exec(["stat", "-c", "%a %G", Self.socket]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(socketMode == "660 fashiond")
        let conffiles = try sandbox.exec(["dpkg-query", "-W", "-f", "${Conffiles}", "fashiond"]).stdout
        #expect(conffiles.contains("/etc/fashiond/fashiond.toml"), "the configuration is not a conffile: \(conffiles)")
        let config = try sandbox.exec(["cat", "/etc/fashiond/fashiond.toml"]).stdout
        #expect(config.contains("#log_predictions = \"sampled\""), "the default configuration lacks the commented keys")

        // The operator's settings: every prediction in the journal (conffile), and for the watchdog
        // scenario a short watchdog and the fault-injection hook (a drop-in, as `systemctl edit` makes).
        try sandbox.shell("echo 'log_predictions = \"all\"' >> /etc/fashiond/fashiond.toml")
        try sandbox.write(
            """
            [Service]
            WatchdogSec=4s
            Environment=FASHIOND_DEBUG_STALL_FILE=\(Self.stallFile)
            Environment=FASHIOND_ENGINE_THREADS=1

            """, to: "/etc/systemd/system/fashiond.service.d/test.conf")
        try mustSucceed(sandbox, ["systemctl", "daemon-reload"])
        // Members of group fashiond may submit; other users may not even connect.
        try mustSucceed(sandbox, ["useradd", "--create-home", "--groups", "fashiond", "alice"])
        try mustSucceed(sandbox, ["useradd", "--create-home", "mallory"])
    }

    /// `systemctl start` returns only after READY=1, which carries the first STATUS= line.
    func startReturnsAfterReady(in sandbox: SystemdSandbox) throws {
        let start = try sandbox.exec(["systemctl", "start", "fashiond"], timeout: 150)
        try #require(start.status == 0, "systemctl start fashiond failed: \(start)\n\(journalText(sandbox))")
        // Read at once, no waiting: the state systemd reached when start returned.
        let state = try sandbox.exec([
            "systemctl", "show", "-p", "ActiveState", "-p", "SubState", "-p", "StatusText", "fashiond",
        ]).stdout
        #expect(state.contains("ActiveState=active"))
        #expect(state.contains("SubState=running"))
        #expect(
            state.contains("StatusText=embedded-kafka fashion-images partitions ["),
            "no STATUS= summary when start returned, so READY=1 was not what ended the start job: \(state)")
        #expect(
            try sandbox.exec(["systemctl", "is-active", "fashiond"]).stdout.trimmingCharacters(
                in: .whitespacesAndNewlines) == "active")

        // Within a few seconds STATUS= shows the assigned partitions, throughput, lag and journal position.
        let pattern =
            #/^embedded-kafka fashion-images partitions \[0,1,2,3\] [0-9]+\.[0-9] images/s lag [0-9]+ journaled [0-9]+/#
        let refreshed = try eventually(timeout: 30) {
            try sandbox.property("StatusText", of: "fashiond").firstMatch(of: pattern) != nil
        }
        let lastStatus = try sandbox.property("StatusText", of: "fashiond")
        #expect(refreshed, "StatusText never showed the summary: \(lastStatus)")

        // The daemon's own "ready" entry precedes systemd's "Started" message.
        let entries = try sandbox.journal(unit: "fashiond.service")
        let readyIndex = entries.firstIndex {
            ($0["MESSAGE"] as? String)?.hasPrefix("ready") == true && $0["_COMM"] as? String == "fashiond"
        }
        let startedIndex = entries.firstIndex {
            ($0["MESSAGE"] as? String)?.hasPrefix("Started fashiond.service") == true
        }
        let ready = try #require(readyIndex, "no 'ready' entry from fashiond in the journal")
        let started = try #require(startedIndex, "no 'Started' entry from systemd in the journal")
        #expect(ready < started)
    }

    /// An operator in group fashiond submits through the socket; a user outside the group cannot.
    func submitThroughSocket(in sandbox: SystemdSandbox) throws -> String {
        let image = try Data(contentsOf: RepositoryPaths.samples.appendingPathComponent("sneaker.png"))
        let submit = try sandbox.exec(
            [
                "runuser", "-u", "alice", "--", "fashionctl", "--socket", Self.socket,
                "submit", "--wait", "--json", "--timeout", "60", "-",
            ], stdin: image, timeout: 90)
        try #require(submit.status == 0, "fashionctl submit --wait as a member of group fashiond failed: \(submit)")
        let record = try ControlAPI.makeDecoder().decode(ResultRecord.self, from: Data(submit.stdout.utf8))
        #expect(record.label == "Sneaker")

        let refused = try sandbox.exec([
            "runuser", "-u", "mallory", "--", "fashionctl", "--socket", Self.socket, "status",
        ])
        #expect(refused.status == 3, "a user outside group fashiond reached the socket: \(refused)")
        return record.requestID
    }

    /// The prediction is a native journal entry with the FASHION_* fields.
    func predictionIsInJournal(in sandbox: SystemdSandbox, requestID: String) throws {
        var entry: [String: Any]?
        _ = try eventually(timeout: 20) {
            entry = try sandbox.journal(unit: "fashiond.service").first {
                $0["FASHION_REQUEST_ID"] as? String == requestID
            }
            return entry != nil
        }
        let prediction = try #require(entry, "no journal entry with FASHION_REQUEST_ID=\(requestID)")
        #expect(prediction["FASHION_LABEL"] as? String == "Sneaker")
        #expect((prediction["FASHION_CONFIDENCE"] as? String).flatMap(Double.init).map { $0 > 0.5 && $0 <= 1 } == true)
        #expect(prediction["FASHION_TOPIC"] as? String == "fashion-images")
        #expect((prediction["FASHION_PARTITION"] as? String).flatMap(Int.init).map { (0..<4).contains($0) } == true)
        #expect((prediction["FASHION_OFFSET"] as? String).flatMap(Int.init) != nil)
        #expect(prediction["FASHION_MODEL"] as? String == "fashion-cnn")
        #expect(prediction["PRIORITY"] as? String == "6")
        #expect(
            prediction["_TRANSPORT"] as? String == "journal", "logged through stderr, not the native journal protocol")
    }

    /// With the service stopped, a connection to the socket starts it, and the request is answered.
    func socketActivationStartsTheDaemon(in sandbox: SystemdSandbox) throws {
        try mustSucceed(sandbox, ["systemctl", "stop", "fashiond"], timeout: 90)
        #expect(try sandbox.exec(["systemctl", "is-active", "fashiond"]).stdout.hasPrefix("inactive"))
        #expect(try sandbox.exec(["systemctl", "is-active", "fashiond.socket"]).stdout.hasPrefix("active"))
        let image = try Data(contentsOf: RepositoryPaths.samples.appendingPathComponent("bag.png"))
        let submit = try sandbox.exec(
            ["fashionctl", "--socket", Self.socket, "submit", "--wait", "--json", "--timeout", "90", "-"],
            stdin: image, timeout: 150)
        try #require(submit.status == 0, "submit to the stopped service failed: \(submit)\n\(journalText(sandbox))")
        let record = try ControlAPI.makeDecoder().decode(ResultRecord.self, from: Data(submit.stdout.utf8))
        #expect(record.label == "Bag")
        #expect(try sandbox.exec(["systemctl", "is-active", "fashiond"]).stdout.hasPrefix("active"))
        let invocation = try sandbox.property("InvocationID", of: "fashiond")
        let takenOver = try sandbox.journal(unit: "fashiond.service").contains {
            $0["_SYSTEMD_INVOCATION_ID"] as? String == invocation
                && ($0["MESSAGE"] as? String)?.hasPrefix("control socket taken over from systemd") == true
        }
        #expect(takenOver, "the daemon started by the socket did not take over systemd's descriptor")
    }

    /// `systemctl reload` re-reads the models; a broken model is refused and the old one keeps serving.
    func reloadSwapsModelsAndRefusesBrokenOnes(in sandbox: SystemdSandbox) throws {
        let pid = try sandbox.property("MainPID", of: "fashiond")
        try mustSucceed(sandbox, ["systemctl", "reload", "fashiond"])
        #expect(
            try eventually(timeout: 30) {
                try messages(sandbox, pid: pid).contains { $0.hasPrefix("models reloaded") }
            },
            "no 'models reloaded' after systemctl reload")
        #expect(try eventually(timeout: 30) { try sandbox.property("ActiveState", of: "fashiond") == "active" })

        try sandbox.shell(
            "cp \(Self.modelFile) /var/tmp/model.onnx.good && printf 'not an onnx model' > \(Self.modelFile)")
        try mustSucceed(sandbox, ["systemctl", "reload", "fashiond"])
        #expect(
            try eventually(timeout: 30) {
                try messages(sandbox, pid: pid).contains {
                    $0.hasPrefix("reload refused; the previous models keep serving")
                }
            },
            "a broken model was not refused with a clear log line")
        try sandbox.shell("cp /var/tmp/model.onnx.good \(Self.modelFile)")
        #expect(try eventually(timeout: 30) { try sandbox.property("ActiveState", of: "fashiond") == "active" })
        #expect(try sandbox.property("MainPID", of: "fashiond") == pid, "reload restarted the process")

        let image = try Data(contentsOf: RepositoryPaths.samples.appendingPathComponent("trouser.png"))
        let submit = try sandbox.exec(
            ["fashionctl", "--socket", Self.socket, "submit", "--wait", "--json", "--timeout", "60", "-"],
            stdin: image, timeout: 90)
        try #require(submit.status == 0, "submit after the refused reload failed: \(submit)")
        let record = try ControlAPI.makeDecoder().decode(ResultRecord.self, from: Data(submit.stdout.utf8))
        #expect(record.label == "Trouser", "the old model stopped serving after a refused reload")
    }

    /// A pipeline that stops making progress stops feeding the watchdog; systemd restarts the service.
    func stalledPipelineIsRestartedByWatchdog(in sandbox: SystemdSandbox) throws {
        let restartsBefore = Int(try sandbox.property("NRestarts", of: "fashiond")) ?? -1
        let pid = try sandbox.property("MainPID", of: "fashiond")
        try sandbox.exec(["touch", Self.stallFile])
        let image = try Data(contentsOf: RepositoryPaths.samples.appendingPathComponent("coat.png"))
        let submit = try sandbox.exec(["fashionctl", "--socket", Self.socket, "submit", "-"], stdin: image)
        try #require(submit.status == 0, "submit (without --wait) failed: \(submit)")

        let restarted = try eventually(timeout: 60, interval: 0.5) {
            (Int(try sandbox.property("NRestarts", of: "fashiond")) ?? -1) > restartsBefore
        }
        try sandbox.exec(["rm", "-f", Self.stallFile])
        #expect(
            restarted,
            "the watchdog did not restart the stalled service (NRestarts stayed \(restartsBefore))\n\(journalText(sandbox))"
        )
        #expect(
            try messages(sandbox, pid: pid).contains { $0.hasPrefix("pipeline stalled") }, "the stall was not logged")
        let systemdSaw = try sandbox.journal(unit: "fashiond.service").contains {
            ($0["MESSAGE"] as? String)?.contains("Watchdog timeout") == true
        }
        #expect(systemdSaw, "systemd did not log a watchdog timeout")

        #expect(
            try eventually(timeout: 90) { try sandbox.property("SubState", of: "fashiond") == "running" },
            "the service did not come back after the watchdog restart")
        #expect(try sandbox.property("MainPID", of: "fashiond") != pid)
        let again = try Data(contentsOf: RepositoryPaths.samples.appendingPathComponent("dress.png"))
        let afterRestart = try sandbox.exec(
            ["fashionctl", "--socket", Self.socket, "submit", "--wait", "--json", "--timeout", "60", "-"],
            stdin: again, timeout: 90)
        #expect(afterRestart.status == 0, "the restarted service does not classify: \(afterRestart)")
    }

    /// `systemctl stop` drains and exits cleanly: nothing is left failed.
    func stopLeavesNoFailedUnit(in sandbox: SystemdSandbox) throws {
        let stop = try sandbox.exec(["systemctl", "stop", "fashiond"], timeout: 90)
        #expect(stop.status == 0, "systemctl stop failed: \(stop)")
        #expect(try sandbox.property("ActiveState", of: "fashiond") == "inactive")
        #expect(try sandbox.property("Result", of: "fashiond") == "success")
        #expect(try sandbox.property("ExecMainStatus", of: "fashiond") == "0")
        let failed = try sandbox.exec(["systemctl", "list-units", "--state=failed", "--no-legend", "--plain"]).stdout
        #expect(failed.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "failed units after stop: \(failed)")
        #expect(
            try messages(sandbox, pid: nil).contains { $0.hasPrefix("fashiond stopped") },
            "no clean 'fashiond stopped' entry")
    }

    /// `systemd-analyze security` rates the installed unit's exposure at 2.0 or below.
    func exposureIsAtMostTwo(in sandbox: SystemdSandbox) throws {
        let analysis = try sandbox.exec(["systemd-analyze", "security", "--no-pager", "fashiond.service"])
        let line = analysis.stdout.split(separator: "\n").first {
            $0.contains("Overall exposure level for fashiond.service")
        }
        let text = try #require(
            line.map(String.init), "systemd-analyze security printed no overall exposure: \(analysis)")
        let score = try #require(text.firstMatch(of: #/: ([0-9]+\.[0-9]+)/#).flatMap { Double($0.1) })
        #expect(score <= 2.0, "exposure \(score) > 2.0:\n\(analysis.stdout)")
        print("systemd-analyze security fashiond.service: exposure \(score)")
    }

    /// `dpkg -r` keeps the results journal; `dpkg -P` removes it and the configuration.
    func removeKeepsStateAndPurgeDeletesIt(in sandbox: SystemdSandbox) throws {
        let remove = try sandbox.exec(["dpkg", "-r", "fashiond"], timeout: 120)
        try #require(remove.status == 0, "dpkg -r failed: \(remove)")
        #expect(try sandbox.exec(["test", "-d", "/var/lib/fashiond/journal"]).status == 0, "dpkg -r removed the state")
        #expect(try sandbox.exec(["systemctl", "is-active", "fashiond.socket"]).stdout.hasPrefix("inactive"))
        #expect(try sandbox.exec(["test", "-e", "/usr/bin/fashiond"]).status != 0)
        let purge = try sandbox.exec(["dpkg", "-P", "fashiond"], timeout: 120)
        try #require(purge.status == 0, "dpkg -P failed: \(purge)")
        #expect(try sandbox.exec(["test", "-e", "/var/lib/fashiond"]).status != 0, "dpkg -P left /var/lib/fashiond")
        #expect(
            try sandbox.exec(["test", "-e", "/etc/fashiond/fashiond.toml"]).status != 0,
            "dpkg -P left the configuration")
        #expect(
            try sandbox.exec(["test", "-e", "/etc/systemd/system/sockets.target.wants/fashiond.socket"]).status != 0)
    }

    // MARK: helpers

    /// Runs a command in the sandbox that must succeed; its output is the failure message if not.
    @discardableResult
    func mustSucceed(
        _ sandbox: SystemdSandbox, _ arguments: [String], timeout: TimeInterval = 60
    ) throws -> CommandResult {
        let result = try sandbox.exec(arguments, timeout: timeout)
        guard result.status == 0 else {
            throw SandboxError("`\(arguments.joined(separator: " "))` failed in the sandbox: \(result)")
        }
        return result
    }

    /// MESSAGE of every fashiond entry (of process `pid` if given).
    func messages(_ sandbox: SystemdSandbox, pid: String?) throws -> [String] {
        try sandbox.journal(unit: "fashiond.service").compactMap { entry in
            guard entry["_COMM"] as? String == "fashiond" else { return nil }
            if let pid, entry["_PID"] as? String != pid { return nil }
            return entry["MESSAGE"] as? String
        }
    }

    /// The unit's journal as text, for failure messages.
    func journalText(_ sandbox: SystemdSandbox) -> String {
        do {
            return "journal:\n" + (try sandbox.exec(["journalctl", "-u", "fashiond", "--no-pager", "-n", "60"]).stdout)
        } catch {
            return "journal unavailable: \(error)"
        }
    }
}
