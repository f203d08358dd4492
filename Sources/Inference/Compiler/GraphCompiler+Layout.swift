/// Layout conversions: gathers between row-major and channels-last memory, one per activation and
/// target layout, shared by every consumer.
extension GraphCompiler {
    /// Returns an activation with the same values whose memory is in logical row-major order,
    /// inserting a gather when the layout differs.
    mutating func ensureRowMajor(_ id: Int, nodeName: String, opType: String) -> Int {
        let info = activations[id]
        if info.isPhysicallyRowMajor { return id }
        let key = "\(id)->rowMajor"
        if let existing = conversions[key] { return existing }
        let logicalOfPhysical = info.logicalIndexOfPhysical()
        var table = [Int32](repeating: 0, count: info.elementCount)
        for (physical, logical) in logicalOfPhysical.enumerated() { table[logical] = Int32(physical) }
        let output = newActivation(dims: info.dims, layout: .rowMajor)
        layers.append(
            Layer(
                .gather(table: table), inputs: [id], output: output, nodeName: nodeName + "/to_nchw",
                opType: "LayoutConversion"))
        conversions[key] = output
        return output
    }

    /// Returns an activation with the same values in channels-last ([H, W, C]) memory order.
    mutating func ensureChannelsLast(_ id: Int, nodeName: String, opType: String) -> Int {
        let info = activations[id]
        if info.isPhysicallyChannelsLast { return id }
        let key = "\(id)->channelsLast"
        if let existing = conversions[key] { return existing }
        var physicalOfLogical = [Int](repeating: 0, count: info.elementCount)
        for (physical, logical) in info.logicalIndexOfPhysical().enumerated() { physicalOfLogical[logical] = physical }
        let target = ActivationInfo(dims: info.dims, layout: .channelsLast)
        let table = target.logicalIndexOfPhysical().map { Int32(physicalOfLogical[$0]) }
        let output = newActivation(dims: info.dims, layout: .channelsLast)
        layers.append(
            Layer(
                .gather(table: table), inputs: [id], output: output, nodeName: nodeName + "/to_nhwc",
                opType: "LayoutConversion"))
        conversions[key] = output
        return output
    }
}
