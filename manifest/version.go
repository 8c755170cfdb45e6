package manifest

// Version is the hydroshard version: journals record it in their open
// record's producer ("hydroshard <Version>") and the merge in the
// metadata documents it writes.
const Version = "0.1.0"
