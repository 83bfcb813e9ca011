// A function that never returns: the load of the isolation phase (bench/run.sh).
exports.main = async () => {
  while (true) {}
}
