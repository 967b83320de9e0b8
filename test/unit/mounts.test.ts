import { describe, expect, it } from 'vitest';
import { linuxMounts } from '../../src/platform/mounts.js';

describe('linuxMounts', () => {
  it('reads mountpoint, type and source, undoing octal escapes and skipping optional fields', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '40 23 0:45 / /home/alice/srv rw,nosuid,nodev shared:200 - fuse.tmount alice@example.org:/srv rw,user_id=0,group_id=0',
      'garbage line',
    ].join('\n');
    expect(linuxMounts(text)).toEqual([
      { mountpoint: '/mnt/with space', fstype: 'ext3', source: '/dev/root' },
      { mountpoint: '/home/alice/srv', fstype: 'fuse.tmount', source: 'alice@example.org:/srv' },
    ]);
  });
});
