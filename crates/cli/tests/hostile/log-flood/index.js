// Logs without end.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  const line = 'x'.repeat(4096); for (;;) console.log(line)
}
