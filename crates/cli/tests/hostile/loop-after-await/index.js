// A busy loop in a promise job.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  await null; while (true) {}
}
