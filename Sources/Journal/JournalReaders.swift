/// Where a ``ResultsFeed`` runs its journal reads: threads that may block, never Swift's cooperative
/// pool. A read blocks on disk I/O, and the first read of a closed segment indexes it by scanning all
/// of it (up to a whole segment, 64 MiB by default).
///
/// The daemon reads on a small `NIOThreadPool`, which also bounds how many reads run at once however
/// many clients follow the journal.
package protocol JournalReaders: Sendable {
    /// Runs `read` on a reader thread and returns what it returned; throws what it threw, or a
    /// ``JournalError`` of kind `closed` when the readers are shutting down.
    func run<Value: Sendable>(
        _ read: @escaping @Sendable () throws(JournalError) -> Value
    ) async throws(JournalError) -> Value
}
