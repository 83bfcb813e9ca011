// Two million queued promise jobs.
exports.main = async (event) => {
  if (!event.attack) return 'calm'
  for (let i = 0; i < 2e6; i++) Promise.resolve().then(() => {}); return 'queued'
}
