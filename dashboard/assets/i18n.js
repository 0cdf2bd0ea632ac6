// The dashboard's words: zh-CN by default, English on request (remembered per browser).
const zh = {
  brand: '安心', skip: '跳到正文', loading: '正在加载…', logout: '退出',
  sound_on: '声音：开', sound_off: '声音：关', enable_sound: '开启提示音',
  nav_today: '今日', nav_alerts: '告警', nav_needs: '需求', nav_overview: '总览', nav_devices: '设备',
  login_title: '登录安心', user_id: '工号', password: '密码', login: '登录',
  bad_credentials: '工号或密码错误', rate_limited: '尝试次数过多，请稍后再试（{s} 秒）',
  session_over: '登录已过期，请重新登录', error: '出错了：{m}', network: '网络不可用，请稍后重试',
  today_title: '我的包保户 · 今日', all_households: '全部', n_households: '{n} 户',
  st_alert: '告警', st_no_sign_of_life: '今天还没有动静', st_device_problem: '设备故障', st_away: '外出 / 住院', st_well: '平安',
  last_activity: '最近活动 {t}', no_activity: '今天无活动记录', first_today: '今天首次 {t}',
  contacted_today: '今天已联系', not_contacted: '今天未联系', visit_task: '需上门',
  my_role_caseworker: '包保', my_role_backup: '备岗',
  record_contact: '记录联系', details: '详情', no_households: '没有可显示的户。',
  alerts_title: '实时告警', no_alerts: '目前没有待处理的告警。', closed_alerts: '最近已处理',
  raised_at: '发生于 {t}', acknowledged_by: '{who} 已确认', repeats: '重复 {n} 次',
  acknowledge: '确认接单', on_the_way: '正在前往', arrived: '已到达', resolve: '处置完成',
  outcome: '处置结果', note: '情况说明', note_required: '请填写情况说明', outcome_required: '请选择处置结果',
  submit: '提交', cancel: '取消', save: '保存', back: '返回',
  new_alert: '新告警：{k} · {h}', mute: '静音', view: '查看',
  state_raised: '新告警', state_notified: '已通知', state_acknowledged: '已确认', state_on_the_way: '正在前往',
  state_arrived: '已到达', state_resolved: '已处置', state_cancelled: '已取消', state_cleared: '已自动解除',
  sev_critical: '紧急', sev_warning: '注意', sev_info: '提示',
  household_title: '户详情', not_found: '未找到该户，或您无权查看。', alert_not_found: '未找到该告警，或您无权查看。',
  timeline: '今日时间线', heatmap: '近四周活动（按小时）', charts: '近 7 天传感器', contacts: '联系记录',
  needs: '需求', devices: '设备', emergency: '紧急联系人', notes: '备注', mode: '状态',
  set_away: '设为外出', set_hospital: '设为住院', set_normal: '恢复正常', mode_set: '已更新状态',
  mode_normal: '正常', mode_away: '外出', mode_hospital: '住院', mode_install_test: '安装测试中',
  ev_door: '门磁', ev_motion: '人体感应', ev_help: '一键求助', ev_gas: '燃气', ev_fall: '跌倒', ev_tamper: '防拆',
  ev_alert: '告警', ev_contact: '联系',
  chart_door: '开门次数（每小时）', chart_motion: '活动次数（每小时）', chart_gas: '燃气浓度 ppm',
  no_data: '暂无数据', less: '少', more: '多',
  contact_title: '一日三问 · 记录联系', method: '联系方式', contact_outcome: '联系结果',
  m_phone: '电话', m_wechat: '微信', m_visit: '上门',
  o_well: '安好', o_needs_help: '需要帮助', o_no_answer: '无人接听', o_not_home: '不在家',
  add_need: '登记需求（可选）', need_category: '需求类别', need_description: '需求内容',
  c_medicine: '配药', c_food: '助餐 / 买菜', c_repair: '维修', c_escort_to_hospital: '陪同就医', c_other: '其他',
  contact_saved: '已记录联系', visit_task_made: '无人接听且今天无动静：已生成上门任务',
  needs_title: '需求清单', no_needs: '没有未完成的需求。', fulfil: '已办结', cancel_need: '撤销',
  need_done: '已更新需求', due: '期限 {t}', assignee: '负责人 {u}',
  overview_title: '督导总览', committee: '居委会', households: '户数', coverage_today: '今日联系率',
  open_alerts: '未结告警', escalations: '升级未确认', ack_median: '确认用时中位数', ack_p90: '确认用时 P90',
  ack_60: '60 秒内确认', coverage_7d: '7 天联系率', export: '导出台账', seconds: '{n} 秒',
  devices_title: '设备列表', only_problems: '只看有问题的', battery: '电量', signal: '信号', last_seen: '最近在线',
  firmware: '固件', problems: '问题', no_devices: '没有设备。', start_test: '开始安装测试', stop_test: '结束安装测试',
  test_running: '安装测试进行中，至 {t}', seen: '已上报', not_seen: '未上报',
  p_never_seen: '从未上线', p_offline: '离线', p_low_battery: '电量低', p_weak_signal: '信号弱', p_open_alert: '有告警',
  k_help: '一键求助', k_fall: '跌倒', k_gas: '燃气报警', k_inactivity: '长时间无活动', k_missed_wakeup: '未按时起床',
  k_night_exit: '夜间外出未归', k_long_bathroom: '卫生间停留过久', k_not_back: '外出未归', k_device_offline: '设备离线',
  k_low_battery: '设备电量低', k_tamper: '设备被拆动', k_suspicious_device: '设备疑似误触', k_gateway_blind: '网关失联',
  oc_false_alarm: '误报', oc_elder_ok: '老人安好', oc_helped_on_site: '上门处置', oc_family_handled: '家属处理',
  oc_hospitalised: '送医', oc_emergency_services: '呼叫 120/110/119', oc_gas_made_safe: '燃气已处置',
  oc_device_fixed: '设备已修复', oc_battery_replaced: '已换电池', oc_no_fault_found: '未发现故障', oc_other: '其他',
  resolved_ok: '告警已处置', acked_ok: '已确认接单',
  role_caseworker: '包保社工', role_committee_head: '居委会主任', role_street_supervisor: '街道督导', role_technician: '技术员', role_admin: '管理员',
  live_on: '实时连接', live_off: '连接中断，正在重连…',
};

const en = {
  brand: 'Anxin', skip: 'Skip to content', loading: 'Loading…', logout: 'Log out',
  sound_on: 'Sound: on', sound_off: 'Sound: off', enable_sound: 'Turn on alarm sound',
  nav_today: 'Today', nav_alerts: 'Alerts', nav_needs: 'Needs', nav_overview: 'Overview', nav_devices: 'Devices',
  login_title: 'Log in to Anxin', user_id: 'User id', password: 'Password', login: 'Log in',
  bad_credentials: 'Wrong user id or password', rate_limited: 'Too many attempts; try again in {s} s',
  session_over: 'Your session ended; please log in again', error: 'Something went wrong: {m}', network: 'No network; try again shortly',
  today_title: 'My households today', all_households: 'All', n_households: '{n} households',
  st_alert: 'Alert', st_no_sign_of_life: 'No sign of life yet', st_device_problem: 'Device problem', st_away: 'Away / in hospital', st_well: 'Well',
  last_activity: 'Last activity {t}', no_activity: 'No activity today', first_today: 'First today {t}',
  contacted_today: 'Contacted today', not_contacted: 'Not contacted today', visit_task: 'Visit needed',
  my_role_caseworker: 'Mine', my_role_backup: 'Backup',
  record_contact: 'Record contact', details: 'Details', no_households: 'No households to show.',
  alerts_title: 'Live alerts', no_alerts: 'No open alerts.', closed_alerts: 'Recently closed',
  raised_at: 'Raised {t}', acknowledged_by: 'Taken by {who}', repeats: 'repeated {n}×',
  acknowledge: 'Acknowledge', on_the_way: 'On my way', arrived: 'Arrived', resolve: 'Resolve',
  outcome: 'Outcome', note: 'What happened', note_required: 'Please describe what happened', outcome_required: 'Please choose an outcome',
  submit: 'Submit', cancel: 'Cancel', save: 'Save', back: 'Back',
  new_alert: 'New alert: {k} · {h}', mute: 'Mute', view: 'View',
  state_raised: 'New', state_notified: 'Notified', state_acknowledged: 'Acknowledged', state_on_the_way: 'On the way',
  state_arrived: 'Arrived', state_resolved: 'Resolved', state_cancelled: 'Cancelled', state_cleared: 'Cleared',
  sev_critical: 'Critical', sev_warning: 'Warning', sev_info: 'Info',
  household_title: 'Household', not_found: 'No such household, or not yours to see.', alert_not_found: 'No such alert, or not yours to see.',
  timeline: "Today's timeline", heatmap: 'Activity by hour, last 4 weeks', charts: 'Sensors, last 7 days', contacts: 'Contacts',
  needs: 'Needs', devices: 'Devices', emergency: 'Emergency contacts', notes: 'Notes', mode: 'Mode',
  set_away: 'Set away', set_hospital: 'In hospital', set_normal: 'Back to normal', mode_set: 'Mode updated',
  mode_normal: 'Normal', mode_away: 'Away', mode_hospital: 'In hospital', mode_install_test: 'Installation test',
  ev_door: 'Door', ev_motion: 'Motion', ev_help: 'Help button', ev_gas: 'Gas', ev_fall: 'Fall', ev_tamper: 'Tamper',
  ev_alert: 'Alert', ev_contact: 'Contact',
  chart_door: 'Door openings per hour', chart_motion: 'Motion per hour', chart_gas: 'Gas ppm',
  no_data: 'No data yet', less: 'less', more: 'more',
  contact_title: 'Daily contact', method: 'How', contact_outcome: 'Outcome',
  m_phone: 'Phone', m_wechat: 'WeChat', m_visit: 'Visit',
  o_well: 'Well', o_needs_help: 'Needs help', o_no_answer: 'No answer', o_not_home: 'Not at home',
  add_need: 'Record a need (optional)', need_category: 'Kind of need', need_description: 'What is needed',
  c_medicine: 'Medicine', c_food: 'Food', c_repair: 'Repair', c_escort_to_hospital: 'Escort to hospital', c_other: 'Other',
  contact_saved: 'Contact recorded', visit_task_made: 'No answer and no sign of life today: a visit task was made',
  needs_title: 'Needs', no_needs: 'No open needs.', fulfil: 'Done', cancel_need: 'Withdraw',
  need_done: 'Need updated', due: 'due {t}', assignee: 'with {u}',
  overview_title: 'Overview', committee: 'Committee', households: 'Households', coverage_today: 'Contacted today',
  open_alerts: 'Open alerts', escalations: 'Escalated, unacknowledged', ack_median: 'Median time to acknowledge', ack_p90: 'P90 time to acknowledge',
  ack_60: 'Acknowledged within 60 s', coverage_7d: 'Coverage, 7 days', export: 'Export ledgers', seconds: '{n} s',
  devices_title: 'Devices', only_problems: 'Only problems', battery: 'Battery', signal: 'Signal', last_seen: 'Last seen',
  firmware: 'Firmware', problems: 'Problems', no_devices: 'No devices.', start_test: 'Start installation test', stop_test: 'End installation test',
  test_running: 'Installation test until {t}', seen: 'reported', not_seen: 'not yet',
  p_never_seen: 'never seen', p_offline: 'offline', p_low_battery: 'low battery', p_weak_signal: 'weak signal', p_open_alert: 'open alert',
  k_help: 'Help button', k_fall: 'Fall', k_gas: 'Gas alarm', k_inactivity: 'Inactive too long', k_missed_wakeup: 'Did not get up',
  k_night_exit: 'Out at night', k_long_bathroom: 'Long in bathroom', k_not_back: 'Not back', k_device_offline: 'Device offline',
  k_low_battery: 'Low battery', k_tamper: 'Device tampered', k_suspicious_device: 'Suspicious device', k_gateway_blind: 'Gateway blind',
  oc_false_alarm: 'False alarm', oc_elder_ok: 'Elder is fine', oc_helped_on_site: 'Helped on site', oc_family_handled: 'Family handled it',
  oc_hospitalised: 'Taken to hospital', oc_emergency_services: 'Emergency services called', oc_gas_made_safe: 'Gas made safe',
  oc_device_fixed: 'Device fixed', oc_battery_replaced: 'Battery replaced', oc_no_fault_found: 'No fault found', oc_other: 'Other',
  resolved_ok: 'Alert resolved', acked_ok: 'Acknowledged',
  role_caseworker: 'Caseworker', role_committee_head: 'Committee head', role_street_supervisor: 'Street supervisor', role_technician: 'Technician', role_admin: 'Administrator',
  live_on: 'Live', live_off: 'Connection lost; reconnecting…',
};

const dictionaries = { zh, en };
let lang = localStorage.getItem('anxin.lang') === 'en' ? 'en' : 'zh';

export function currentLang() { return lang; }
export function locale() { return lang === 'zh' ? 'zh-CN' : 'en'; }

export function setLang(l) {
  lang = l === 'en' ? 'en' : 'zh';
  localStorage.setItem('anxin.lang', lang);
  document.documentElement.lang = locale();
}

/** The text of `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const s = dictionaries[lang][key] ?? dictionaries.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? ''));
}

/** Translates the static parts of the page (`data-i18n`). */
export function translateStatic(root = document) {
  root.querySelectorAll('[data-i18n]').forEach(el => { el.textContent = t(el.dataset.i18n); });
}
