// Unbounded async recursion.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const f = async (n) => 1 + await f(n + 1); return f(0)
}
