import Synchronization

/// The model inputs (28×28 normalised grayscale, 784 bytes) of the most recent images, by request id,
/// for `GET /v1/inputs/{request_id}`: what the model saw, shown next to each result by `fashionctl web`.
///
/// Bounded: `capacity` entries in one preallocated buffer (capacity × 784 bytes, 256 → 196 KiB), the
/// oldest overwritten first. A request id seen again takes a slot of its own; a lookup finds its latest
/// entry. Filled by the journal writer before it appends the batch, so the input is there by the time its
/// result is durable.
final class InputRing: Sendable {
    static let imageBytes = 784

    private struct State {
        var pixels: [UInt8]
        /// Request id in each slot ("" when empty).
        var ids: [String]
        /// Each slot's id hashed, so a lookup compares integers first.
        var idHashes: [Int]
        /// The slot the next image goes to: the oldest.
        var next = 0

        /// No index by id: this runs for every classified image, and keeping a dictionary (the new id hashed
        /// in, the evicted one out) cost more than the rest of the store; a lookup scans instead, and is rare.
        mutating func store(requestID: String, pixels: [UInt8], capacity: Int) {
            guard pixels.count == InputRing.imageBytes else { return }
            let slot = next
            next = next + 1 == capacity ? 0 : next + 1
            ids[slot] = requestID
            idHashes[slot] = requestID.hashValue
            self.pixels.withUnsafeMutableBufferPointer { buffer in
                pixels.withUnsafeBufferPointer { source in
                    (buffer.baseAddress! + slot * InputRing.imageBytes).update(
                        from: source.baseAddress!, count: InputRing.imageBytes)
                }
            }
        }

        /// The newest slot holding `requestID`. Held under the writer's lock: integers compared, so even the
        /// largest ring (65,536) is scanned in tens of microseconds.
        func slot(of requestID: String, capacity: Int) -> Int? {
            guard !requestID.isEmpty else { return nil }
            let hash = requestID.hashValue
            var slot = next
            for _ in 0..<capacity {
                slot = slot == 0 ? capacity - 1 : slot - 1
                if idHashes[slot] == hash && ids[slot] == requestID { return slot }
            }
            return nil
        }
    }

    let capacity: Int
    private let state: Mutex<State>

    /// - Parameter capacity: entries kept; 0 keeps none.
    init(capacity: Int) {
        self.capacity = max(0, capacity)
        state = Mutex(
            State(
                pixels: [UInt8](repeating: 0, count: max(0, capacity) * Self.imageBytes),
                ids: [String](repeating: "", count: max(0, capacity)),
                idHashes: [Int](repeating: 0, count: max(0, capacity))))
    }

    /// Memory the pixel buffer takes, in bytes.
    var pixelBytes: Int { capacity * Self.imageBytes }

    /// Keeps `pixels` (784 bytes) as the input of `requestID`.
    func remember(requestID: String, pixels: [UInt8]) {
        guard capacity > 0 else { return }
        state.withLock { $0.store(requestID: requestID, pixels: pixels, capacity: capacity) }
    }

    /// Keeps the pixels of every image item of a batch, under one lock.
    func remember(imagesOf items: [PipelineItem]) {
        guard capacity > 0 else { return }
        state.withLock { state in
            // By index: `for item in items` would copy (retain and release) every item's strings and arrays.
            for index in items.indices {
                if case .image(let pixels, _) = items[index].content {
                    state.store(requestID: items[index].requestID, pixels: pixels, capacity: capacity)
                }
            }
        }
    }

    /// The input of `requestID`, if it is still in the ring.
    func input(requestID: String) -> [UInt8]? {
        state.withLock { state in
            guard let slot = state.slot(of: requestID, capacity: capacity) else { return nil }
            return Array(state.pixels[(slot * Self.imageBytes)..<((slot + 1) * Self.imageBytes)])
        }
    }
}
