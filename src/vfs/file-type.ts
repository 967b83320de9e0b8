/** The file-type bits of a mode, as SFTP carries them (POSIX values on every OS). */
export const FileType = { S_IFMT: 0o170000, S_IFDIR: 0o040000, S_IFREG: 0o100000, S_IFLNK: 0o120000 };

export const isDir = (attrs: { mode: number }): boolean => (attrs.mode & FileType.S_IFMT) === FileType.S_IFDIR;

export const isRegular = (attrs: { mode: number }): boolean => (attrs.mode & FileType.S_IFMT) === FileType.S_IFREG;
