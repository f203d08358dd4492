/// What opening the journal found and repaired.
package struct RecoveryReport: Sendable, Equatable {
    /// Segment files retained after recovery (including the active one).
    package var segments: Int
    /// Records retained across those segments.
    package var records: UInt64
    /// The oldest retained record's sequence (`lastSequence + 1` when none is retained).
    package var firstSequence: UInt64
    /// The newest record's sequence (0 for a journal that never held a record).
    package var lastSequence: UInt64
    /// Bytes dropped from the end of the active segment (a torn or corrupt tail), plus the sizes of
    /// incomplete segment files left by an interrupted rotation.
    package var truncatedBytes: Int64
    /// Why bytes were dropped, `nil` when nothing was.
    package var truncatedReason: String?
    /// Incomplete segment or temporary files removed (interrupted rotations), by file name.
    package var removedFiles: [String]
    /// Closed segments deleted by retention while opening.
    package var retiredSegments: Int
    /// Bytes read while recovering (the active segment, plus older segments when dedupe keys needed them).
    package var scannedBytes: Int64

    /// Whether opening found the journal exactly as a clean shutdown leaves it.
    package var wasClean: Bool { truncatedBytes == 0 && removedFiles.isEmpty }
}
