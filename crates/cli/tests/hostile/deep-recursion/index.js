// Unbounded recursion ends in a RangeError.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const f = () => f(); return f()
}
