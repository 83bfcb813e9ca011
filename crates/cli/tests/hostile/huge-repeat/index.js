// One string of half a gigabyte.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  return 'x'.repeat(2 ** 29).length
}
