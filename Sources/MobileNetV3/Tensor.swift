/// A dense float32 array with a shape, stored row-major in `data`.
///
/// Image batches use `layout` to say how their four dimensions are ordered: `[N, 3, H, W]`
/// for `.nchw`, `[N, H, W, 3]` for `.nhwc`. Outputs (logits, features) are `[N, K]`.
public struct Tensor: Hashable, Sendable {
    public private(set) var shape: [Int]
    /// Dimension order of a four-dimensional image tensor; ignored for other ranks.
    public var layout: Layout
    /// The elements, row-major. They may be changed in place; a tensor whose count no
    /// longer matches its shape is rejected by ``Session/predict(_:)`` with a shape error.
    public var data: [Float]

    /// Creates a tensor, checking that `data.count` is the product of `shape`.
    public init(shape: [Int], layout: Layout = .nchw, data: [Float]) throws(MobileNetV3Error) {
        let count = try Tensor.elementCount(shape)
        guard count == data.count else {
            throw MobileNetV3Error(.shape, "shape \(shape) holds \(count) elements, data has \(data.count)")
        }
        self.shape = shape
        self.layout = layout
        self.data = data
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], layout: Layout = .nchw, repeating value: Float = 0) throws(MobileNetV3Error) {
        let count = try Tensor.elementCount(shape)
        self.shape = shape
        self.layout = layout
        self.data = [Float](repeating: value, count: count)
    }

    init(uncheckedShape shape: [Int], layout: Layout = .nchw, data: [Float]) {
        self.shape = shape
        self.layout = layout
        self.data = data
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// For a rank-2 tensor `[N, K]`: row `n`.
    public func row(_ n: Int) -> ArraySlice<Float> {
        guard shape.count == 2, n >= 0, n < shape[0] else { return [] }
        return data[(n * shape[1])..<((n + 1) * shape[1])]
    }

    /// The same image batch in the other layout (a copy). Only for rank-4 tensors.
    public func converted(to target: Layout) throws(MobileNetV3Error) -> Tensor {
        guard target != layout else { return self }
        guard shape.count == 4 else {
            throw MobileNetV3Error(.shape, "only four-dimensional tensors have a layout (shape \(shape))")
        }
        var out = [Float](repeating: 0, count: data.count)
        if layout == .nchw {
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            for b in 0..<n { for y in 0..<h { for x in 0..<w { for ch in 0..<c {
                out[((b * h + y) * w + x) * c + ch] = data[((b * c + ch) * h + y) * w + x]
            } } } }
            return Tensor(uncheckedShape: [n, h, w, c], layout: .nhwc, data: out)
        } else {
            let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
            for b in 0..<n { for ch in 0..<c { for y in 0..<h { for x in 0..<w {
                out[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch]
            } } } }
            return Tensor(uncheckedShape: [n, c, h, w], layout: .nchw, data: out)
        }
    }

    static func elementCount(_ shape: [Int]) throws(MobileNetV3Error) -> Int {
        var count = 1
        for d in shape {
            guard d >= 0 else { throw MobileNetV3Error(.shape, "negative dimension in shape \(shape)") }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw MobileNetV3Error(.sizeOverflow, "shape \(shape) is too large") }
            count = p
        }
        return count
    }
}
