// A comparator that never returns.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return [3, 2, 1].sort(() => { for (;;) {} })
}
