// Catastrophic regular-expression backtracking.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return /(a+)+$/.test('a'.repeat(40) + 'b')
}
