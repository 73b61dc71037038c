import { describe, expect, it } from 'vitest';
import { entryOwner } from '../../src/agent/entry-owner.js';

describe('entryOwner', () => {
  it.each([
    [['unix:uid:1000'], { uid: 1000, gid: undefined }],
    [['k8s:ns:pay', 'unix:uid:0', 'unix:gid:33'], { uid: 0, gid: 33 }],
    [['unix:uid:1000', 'unix:uid:1000'], { uid: 1000, gid: undefined }],
    [['unix:uid:1000', 'unix:gid:1', 'unix:gid:2'], { uid: 1000, gid: undefined }],
  ])('%j → %j', (selectors, owner) => expect(entryOwner(selectors)).toEqual(owner));

  it.each([[[]], [['k8s:sa:pay/api']], [['unix:uid:1000', 'unix:uid:1001']], [['unix:uid:alice']], [['unix:uid:-1']], [['unix:uid:4294967295']]])(
    'names no owner for %j: the files stay the agent’s',
    (selectors) => expect(entryOwner(selectors)).toBeUndefined(),
  );
});
