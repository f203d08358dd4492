/// A control-API request that passed validation: which endpoint, with its parsed parameters.
enum ControlRoute: Equatable, Sendable {
    /// `GET /v1/status`
    case status
    /// `GET /v1/models`
    case models
    /// `POST /v1/images`
    case submit(SubmitParameters)
    /// `GET /v1/results`
    case results(ResultsQuery)
    /// `POST /v1/reload`
    case reload
    /// `GET /metrics` (Prometheus text format)
    case metrics
    /// `GET /v1/inputs/{request_id}`: the model input of a recent result
    case input(requestID: String)
}
