import Shared

/// One line of a results response: the decoded record and the JSON text exactly as the daemon sent it.
///
/// The text keeps fields a newer daemon added within the same schema version, which a re-encoded
/// ``ResultRecord`` would drop; `fashionctl --json` prints it unchanged.
package struct ResultLine: Sendable, Equatable {
    /// The decoded record.
    package var record: ResultRecord
    /// The line as received, without the trailing newline.
    package var json: String

    /// Pairs a record with the text it was decoded from.
    package init(record: ResultRecord, json: String) {
        self.record = record
        self.json = json
    }
}
