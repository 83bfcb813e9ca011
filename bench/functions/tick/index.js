// For the messages phase's timer measurement: fired every second by its timer trigger.
exports.main = async (event) => event.Time;
