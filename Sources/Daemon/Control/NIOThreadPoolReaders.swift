import Journal
import NIOPosix

/// The journal readers of results answers: a `NIOThreadPool`, so blocking file I/O stays off the
/// event loops and Swift's cooperative pool, and a fixed number of reads run at once however many
/// clients read or follow results. The pool's owner starts and stops it.
struct NIOThreadPoolReaders: JournalReaders {
    let pool: NIOThreadPool

    func run<Value: Sendable>(
        _ read: @escaping @Sendable () throws(JournalError) -> Value
    ) async throws(JournalError) -> Value {
        let outcome: Result<Value, JournalError>
        do {
            outcome = try await pool.runIfActive { Result { () throws(JournalError) -> Value in try read() } }
        } catch {
            // The reader threads are gone: the daemon is stopping.
            throw JournalError(
                kind: .closed, message: "fashiond is stopping; results are no longer read from the journal")
        }
        return try outcome.get()
    }
}
