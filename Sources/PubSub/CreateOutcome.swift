/// Creating a topic or subscription that exists already is not an error (`409 ALREADY_EXISTS`).
package enum CreateOutcome: Sendable, Equatable {
    case created
    case alreadyExisted
}
