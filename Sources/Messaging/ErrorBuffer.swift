/// The text librdkafka wrote into an error buffer.
func errorBufferText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
